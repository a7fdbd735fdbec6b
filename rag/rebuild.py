"""`rag ingest --rebuild`: build the new index beside the live one, then swap.

Nothing is deleted before the new index is complete: a rebuild that fails (read-only store,
full disk, Ctrl-C, a crash) leaves the live index exactly as it was, still answering.

- An intact store (embedded or server): the new index goes into generation N+1 collections
  (`chunks-<model>-g<N+1>`, `papers-<model>-g<N+1>`). When it is complete the pointer
  collection `rag-<model>` is switched to N+1 in one metadata write, and only then are the
  older generations dropped. Open indexes notice the pointer and reopen (`Index.refresh`).
- An embedded store Chroma cannot open (damaged, foreign files): the new store is built in a
  sibling directory `chroma.rebuild`, which is renamed into place when it is complete; the
  damaged directory is removed only after that.

The caller holds the writer lock (`rag.writer_lock`) for the whole rebuild.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.embedding import model_slug
from rag.errors import StoreError
from rag.settings import Settings
from rag.store import Store, _persistent, check_writable, open_client, read_pointer, store_location


def live_store(settings: Settings, embed_model: str) -> Store | None:
    """The live index a rebuild replaces, to copy unchanged chunks' vectors from (`ingest`'s
    `reuse`); None when there is none or it cannot be read (damaged, foreign): then everything
    is embedded afresh, and `rebuilding` reports or repairs what is wrong with it."""
    try:
        return Store(open_client(settings, create=False), embed_model, create=False)
    except StoreError:
        return None


@contextmanager
def rebuilding(settings: Settings, embed_model: str) -> Iterator[Store]:
    """An empty Store to ingest into; made live when the body finishes without an error."""
    check_writable(settings)
    try:
        client = open_client(settings)
    except StoreError:
        if settings.uses_server:
            raise
        with _beside_directory(settings, embed_model) as store:
            yield store
        return
    slug = model_slug(embed_model)
    # Only the pointer is read: the live collections may be foreign or damaged.
    new_gen = read_pointer(client, slug)[0] + 1
    ours = _model_collections(client, slug)
    for name in (f"chunks-{slug}-g{new_gen}", f"papers-{slug}-g{new_gen}"):
        if name in ours:  # left over by an earlier rebuild that did not finish; never live
            client.delete_collection(name)
    store = Store(client, embed_model, create=True, generation=new_gen)
    try:
        yield store
    except BaseException:
        for name in (store.chunks_name, store.papers_name):
            try:
                client.delete_collection(name)
            except Exception:  # full disk or a lost server: the next rebuild removes it
                pass
        raise
    store.publish(switch=True)
    for name in _model_collections(client, slug) - {store.chunks_name, store.papers_name}:
        client.delete_collection(name)
    _drop_old_lexical(store)


def _drop_old_lexical(store: Store) -> None:
    """Remove the lexical indexes of generations that are no longer live (this host's)."""
    from rag.lexical_store import lexical_dir

    live = lexical_dir(store)
    if not live.parent.is_dir():
        return
    for path in live.parent.glob(f"{store.slug}-g*"):
        if path != live and path.name.removeprefix(f"{store.slug}-g").isdigit():
            shutil.rmtree(path, ignore_errors=True)


def _model_collections(client, slug: str) -> set[str]:
    """Every generation's chunk and paper collections of one model (not the pointer)."""
    names = {getattr(c, "name", c) for c in client.list_collections()}
    return {n for n in names for kind in ("chunks", "papers")
            if n == f"{kind}-{slug}" or n.startswith(f"{kind}-{slug}-g") and n.rsplit("-g", 1)[1].isdigit()}


@contextmanager
def _beside_directory(settings: Settings, embed_model: str) -> Iterator[Store]:
    live = Path(store_location(settings))
    fresh = live.with_name(live.name + ".rebuild")
    if fresh.exists():
        shutil.rmtree(fresh)  # an earlier rebuild that did not finish
    fresh.mkdir(parents=True)
    client = _persistent(fresh)
    try:
        store = Store(client, embed_model, create=True)
        yield store
        store.publish(switch=True)
    except BaseException:
        client.close()
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    client.close()
    if live.exists():
        old = live.with_name(f"{live.name}.damaged-{time.strftime('%Y%m%d%H%M%S')}")
        live.rename(old)
        fresh.rename(live)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    else:
        fresh.rename(live)
