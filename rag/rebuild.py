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

What is read (`plan_rebuild`): the paths given, and every source the live index records,
re-read from where it was last read (`rag.source_paths.recorded_paths`), the uploads folder or the
default corpus paths. A recorded source whose file is found nowhere makes the rebuild refuse
before anything is touched, naming it, unless the caller asked to drop such sources: a
rebuild never silently loses a user's papers. With no path given and nothing recorded (a new
or unreadable index that this host knows no sources of), the default corpus paths are read.

The caller holds the writer lock (`rag.writer_lock`) for the whole rebuild.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rag.embedding import model_slug
from rag.errors import ConfigError, StoreError
from rag.formats import is_candidate
from rag.formats.walk import walk
from rag.settings import Settings
from rag.source_paths import recorded_paths
from rag.sources import upload_dir
from rag.store import Store, _persistent, check_writable, open_client, read_pointer, store_location


def live_store(settings: Settings, embed_model: str) -> Store | None:
    """The live index a rebuild replaces, to copy unchanged chunks' vectors from (`ingest`'s
    `reuse`); None when there is none or it cannot be read (damaged, foreign): then everything
    is embedded afresh, and `rebuilding` reports or repairs what is wrong with it."""
    try:
        return Store(open_client(settings, create=False), embed_model, create=False)
    except StoreError:
        return None


@dataclass
class RebuildPlan:
    """What a rebuild reads: `paths` (those given, then the recorded sources' files not among
    them); `kept`: recorded source -> the file it is re-read from; `dropped`: recorded sources
    without a file, left out because the caller asked; `recorded_by`: where the list of
    sources came from ("the index", or this host's list when the index cannot be read)."""

    paths: list[Path]
    kept: dict[str, Path] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    recorded_by: str = "the index"


def plan_rebuild(settings: Settings, given: list[Path], live: Store | None, drop_missing: bool = False) -> RebuildPlan:
    """The files a rebuild reads so that no recorded source is lost, or ConfigError naming
    the recorded sources whose file is gone (nothing has been touched then). `given`: the
    paths the user named (may be empty); `live`: the index being replaced (`live_store`)."""
    names, recorded_by = _recorded_sources(settings, live)
    given_files = {f.name: f for f in reversed(walk(given, is_candidate)[0])}  # the first of a name wins
    if not names:
        return RebuildPlan(list(given) or list(settings.corpus_paths), recorded_by=recorded_by)
    known = recorded_paths(settings)
    defaults = [p for p in settings.corpus_paths if p.exists()]
    default_files = {f.name: f for f in reversed(walk(defaults, is_candidate)[0])}
    kept: dict[str, Path] = {}
    missing: list[str] = []
    for name in sorted(names):
        found = given_files.get(name) or next(
            (f for f in (known.get(name), upload_dir(settings) / name, default_files.get(name))
             if f is not None and f.is_file()), None)
        if found is None:
            missing.append(name)
        else:
            kept[name] = found
    if missing and not drop_missing:
        listed = ", ".join(f"{n} (was {known[n]})" if n in known else n for n in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ConfigError(f"refused to rebuild, the index is unchanged: {recorded_by} records {len(missing)} "
                          f"source(s) whose file is gone: {listed}{more}; give their paths, `rag remove` them, "
                          "or pass --drop-missing to rebuild without their papers")
    extra = [f for name, f in kept.items() if name not in given_files]
    return RebuildPlan(list(given) + extra, kept, missing, recorded_by)


def _recorded_sources(settings: Settings, live: Store | None) -> tuple[set[str], str]:
    if live is not None:
        try:
            return set(live.sources()), "the index"
        except Exception:  # a store that opens but cannot be read: as if there were none
            pass
    return set(recorded_paths(settings)), "this host's list of sources (the index cannot be read)"


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
