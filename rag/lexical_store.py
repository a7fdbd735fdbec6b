"""Where a store's lexical index lives, how it is built from the store, and how a query host
keeps its copy current with a Chroma server.

- Embedded store: `<chroma dir>/lexical/<model>-g<generation>`, written by the ingest itself.
- Chroma server: the index is derived data, so each host keeps its own copy in
  `<data_dir>/lexical-cache/<host>-<port>/<model>-g<generation>`. Every ingest batch also
  appends an entry to the server's ingest log, a small collection `rag-log-<model>[-g<N>]`
  (one record per batch: a time-ordered sequence number and the batch's paper ids). An open
  index that sees the store's version token move (`Index.refresh`) reads the log entries it
  has not applied and re-derives those papers' lexical documents from the server's chunk
  documents (`sync_from_log`); the entries applied are kept in `log.json` in the copy.
  Re-applying an entry is harmless (a paper's documents are replaced as a whole), so a host
  that dies mid-sync simply redoes it.

A missing or damaged index is rebuilt from the store's committed papers (`rebuild`), paged;
at open this happens automatically up to `AUTO_REBUILD_CHUNKS` chunks (seconds), and above
that the open fails with a StoreError naming `rag ingest --rebuild-lexical`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from rag.errors import StoreError
from rag.lexical import REBUILD_LEXICAL, LexicalIndex, chunk_docs, name_record
from rag.store import Store, lexical_cache_dir, paper_from_record

AUTO_REBUILD_CHUNKS = 50_000  # at open, a missing index of up to this many chunks is rebuilt
PAGE = 1000  # papers per page when rebuilding or syncing
LOG_WINDOW_NS = 120 * 10**9  # entries this much older than the newest applied one are re-checked


def lexical_dir(store: Store) -> Path:
    """The directory of `store`'s lexical index (see the module docstring)."""
    name = f"{store.slug}-g{store.generation}"
    path = store._path()
    if path is not None:
        return path / "lexical" / name
    root = lexical_cache_dir(store.client)
    if root is None:  # a client not made by open_client: a per-user cache
        root = Path(tempfile.gettempdir()) / f"rag-lexical-cache-{os.getuid()}" / _server_name(store.client)
    return Path(root) / name


def _server_name(client) -> str:
    s = client.get_settings()
    return f"{s.chroma_server_host}-{s.chroma_server_http_port}"


def open_lexical(store: Store, auto_rebuild_chunks: int = AUTO_REBUILD_CHUNKS) -> LexicalIndex:
    """The lexical index of `store`, current with it; built from the store when missing or
    damaged and small, else a StoreError naming `rag ingest --rebuild-lexical`."""
    path = lexical_dir(store)
    problem = None
    if LexicalIndex.exists(path):
        try:
            lex = LexicalIndex(path)
            if lex.num_docs > 0 or store.chunks.count() == 0:
                if store.is_server:
                    sync_from_log(store, lex)
                return lex
            problem = f"the lexical index at {path} is empty but the store holds chunks"
        except StoreError as err:
            problem = str(err)
    else:
        n = store.chunks.count()
        if n == 0:
            return LexicalIndex(path, create=True)
        problem = f"the lexical index at {path} is missing"
    n = store.chunks.count()
    if n > auto_rebuild_chunks:
        raise StoreError(f"{problem.split('; ')[0]} ({n:,} chunks); {REBUILD_LEXICAL}")
    return rebuild(store)


def _docs_for(store: Store, paper_ids: list[str]) -> tuple[list, list, list]:
    """(papers, chunk docs, name records) of the committed papers among `paper_ids`."""
    papers = [paper_from_record(pid, fields) for pid, fields in store.records(paper_ids)]
    triples = []
    if papers:
        got = store.chunks.get(where={"paper_id": {"$in": [p.paper_id for p in papers]}},
                               include=["documents", "metadatas"])
        triples = [(cid, meta["paper_id"], doc)
                   for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"])]
    return papers, chunk_docs(triples), [name_record(p) for p in papers]


def resync(store: Store, lex: LexicalIndex, paper_ids: list[str], deleted: bool = False) -> int:
    """Make the lexical documents of `paper_ids` what the store holds for them now; returns
    how many have no paper record. Their documents are kept (the ingest that logged them may
    not have committed them yet) unless `deleted` (the papers were removed)."""
    absent = 0
    for i in range(0, len(paper_ids), PAGE):
        part = paper_ids[i:i + PAGE]
        papers, docs, names = _docs_for(store, part)
        gone = [pid for pid in part if pid not in {p.paper_id for p in papers}]
        absent += len(gone)
        if deleted:
            lex.delete(gone)
        if papers:
            lex.replace(papers, docs, names)
    return absent


def rebuild(store: Store, path: Path | None = None, progress=None) -> LexicalIndex:
    """A fresh lexical index of `store`'s committed papers, built beside the old one (which
    keeps answering) and swapped in when complete. `progress(done)` is called per page."""
    path = path or lexical_dir(store)
    fresh = path.with_name(f"{path.name}.building-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    lex = LexicalIndex(fresh, create=True)
    newest = _newest_entry(store) if store.is_server else None
    offset, done = 0, 0
    try:
        while True:
            rows = store.papers.get(include=[], limit=PAGE, offset=offset)
            ids = rows["ids"]
            if ids:
                papers, docs, names = _docs_for(store, ids)
                lex.replace(papers, docs, names)
                done += len(papers)
                if progress is not None:
                    progress(done)
            if len(ids) < PAGE:
                break
            offset += PAGE
        lex.close()
        if newest is not None:
            _save_state(fresh, {"seq": newest[0], "applied": [newest[1]]})
    except BaseException:
        lex.close()
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    old = path.with_name(f"{path.name}.old-{os.getpid()}")
    if path.exists():
        path.rename(old)
    fresh.rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return LexicalIndex(path)


# --- the ingest log of a Chroma server ------------------------------------------------------
def _log(store: Store, create: bool = True):
    name = f"rag-log-{store.slug}" + (f"-g{store.generation}" if store.generation else "")
    if create:
        return store.client.get_or_create_collection(name, embedding_function=None)
    try:
        return store.client.get_collection(name, embedding_function=None)
    except Exception:
        return None


def log_batch(store: Store, paper_ids: list[str], deleted: bool = False) -> str:
    """Append an entry naming `paper_ids` to the server's ingest log; returns its id. Written
    before the batch's paper records: a host that syncs before they land retries the entry."""
    seq = time.time_ns()
    entry = f"{seq:020d}-{uuid.uuid4().hex[:8]}"
    _log(store).add(ids=[entry], embeddings=[[0.0]], documents=[json.dumps(paper_ids)],
                    metadatas=[{"seq": seq, "deleted": deleted}])
    return entry


def _newest_entry(store: Store) -> tuple[int, str] | None:
    log = _log(store, create=False)
    if log is None or log.count() == 0:
        return None
    rows = log.get(include=["metadatas"], where={"seq": {"$gte": time.time_ns() - 10 * LOG_WINDOW_NS}})
    if not rows["ids"]:
        rows = log.get(include=["metadatas"])
    seq, entry = max((m["seq"], i) for i, m in zip(rows["ids"], rows["metadatas"]))
    return seq, entry


def _state_file(lex: LexicalIndex | Path) -> Path:
    return (lex.path if isinstance(lex, LexicalIndex) else lex) / "log.json"


def _load_state(lex: LexicalIndex) -> dict:
    try:
        return json.loads(_state_file(lex).read_text())
    except (OSError, ValueError):
        return {"seq": 0, "applied": []}


def _save_state(where: LexicalIndex | Path, state: dict) -> None:
    target = _state_file(where)
    tmp = target.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, target)


def mark_applied(lex: LexicalIndex, entry: str) -> None:
    """Record that this host's copy already holds log entry `entry` (the ingest wrote it)."""
    state = _load_state(lex)
    seq = int(entry.split("-")[0])
    state["applied"] = sorted(set(state["applied"]) | {entry})
    state["seq"] = max(state["seq"], seq)
    _save_state(lex, _trim(state))


def _trim(state: dict) -> dict:
    floor = state["seq"] - LOG_WINDOW_NS
    state["applied"] = [e for e in state["applied"] if int(e.split("-")[0]) >= floor]
    return state


def sync_from_log(store: Store, lex: LexicalIndex) -> int:
    """Apply the server's ingest-log entries this copy has not seen; returns how many."""
    log = _log(store, create=False)
    if log is None:
        return 0
    state = _load_state(lex)
    rows = log.get(where={"seq": {"$gte": state["seq"] - LOG_WINDOW_NS}}, include=["documents", "metadatas"])
    seen = set(state["applied"])
    todo = sorted((m["seq"], entry, doc, bool(m.get("deleted")))
                  for entry, doc, m in zip(rows["ids"], rows["documents"], rows["metadatas"]) if entry not in seen)
    if not todo:
        return 0
    applied = 0
    try:
        # Never wait here: a busy writer is an ingest on this host, writing this copy itself.
        lex._writer(wait=0)
        for seq, entry, doc, deleted in todo:
            absent = resync(store, lex, json.loads(doc), deleted)
            if absent and time.time_ns() - seq < LOG_WINDOW_NS:
                continue  # not committed yet (or never will be): retried until the window passes
            state["applied"].append(entry)
            state["seq"] = max(state["seq"], seq)
            _save_state(lex, _trim(state))
            applied += 1
    except StoreError:  # the lexical writer stayed busy (an ingest on this host): next time
        pass
    finally:
        lex.close()  # a query host holds the writer only while it applies entries
    return applied
