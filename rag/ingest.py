"""Incremental, idempotent, crash-safe ingestion of paper files into the store.

For each batch of papers read from the files:
1. papers whose stored content hash matches are *unchanged*: nothing is chunked or embedded;
2. the others are chunked; chunk ids are content hashes, so chunks already stored (by an
   interrupted run, or unchanged passages of an edited abstract) are reused, never re-embedded;
3. missing chunks are embedded and upserted (every chunk carries the paper's filter fields,
   `rag.lexical.filter_metadata`), then the paper's stale chunks are deleted;
4. the paper's lexical documents are replaced and committed (`rag.lexical`); with a Chroma
   server the batch is also appended to the server's ingest log (`rag.lexical_store`);
5. last, the paper record is upserted: it is the commit marker. A run killed anywhere before
   that leaves no paper record (or the old hash), so the next run redoes exactly that paper;
   its chunks and lexical documents meanwhile are phantoms that queries drop (no record).

A paper stored before chunks carried filter fields counts as *updated* once: its chunks get
the fields and its lexical documents are rewritten, reusing its vectors (nothing is embedded).

Papers are never deleted because a file lacks them: ingesting a bad or partial file can only
add or update, never lose what is indexed. A paper known only by its title (no `id`) is
matched to the stored versions of that title: same content -> unchanged; different content
from the same file -> that version is updated (an edit); different content from another file
-> a new version (`-v2`, ...), so a second file can never overwrite the first file's paper.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np

from rag import ingest_status
from rag.chunking import Chunker
from rag.corpus import PaperStream, content_hash, paper_id_for
from rag.embedding import Embedder, TokenCounter
from rag.formats.base import SkipLog
from rag.lexical import LexicalIndex, chunk_docs, filter_metadata, name_record
from rag.lexical_store import log_batch, mark_applied, open_lexical
from rag.models import Chunk, Paper
from rag.settings import Settings
from rag.shipped import vector_source
from rag.source_paths import forget_paths, remember_paths
from rag.store import FILTER_FIELDS, Store

BATCH_PAPERS = 256  # papers per read-compare-embed-commit round (the `batch_papers` default)


@dataclass
class IngestReport:
    files: int = 0
    read: int = 0  # records parsed into papers, duplicates included
    duplicates: int = 0  # exact duplicates merged into an earlier record
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    stale_chunks_deleted: int = 0
    seconds: float = 0.0
    # line 0: a whole file, no record. Bounded: the first records' reasons, the rest counted.
    skipped: SkipLog = field(default_factory=SkipLog)

    @property
    def distinct(self) -> int:
        return self.new + self.updated + self.unchanged

    @property
    def skipped_records(self) -> int:
        return self.skipped.records

    def summary(self, limit: int = 50) -> str:
        """What happened, then each skipped record or file as `file:line: reason`."""
        file_notes = self.skipped.total - self.skipped_records
        lines = [
            f"files {self.files}, papers read {self.read} ({self.duplicates} duplicates merged), "
            f"new {self.new}, updated {self.updated}, unchanged {self.unchanged}, "
            f"skipped {self.skipped_records}" + (f" (and {file_notes} file(s) with no records)" if file_notes else ""),
            f"chunks embedded {self.chunks_embedded}, reused {self.chunks_reused}, "
            f"stale deleted {self.stale_chunks_deleted}; {self.seconds:.1f} s",
        ]
        lines += [f"  skipped {s}" for s in self.skipped[:limit]]
        if self.skipped.total > limit:
            lines.append(f"  ... and {self.skipped.total - limit} more")
        return "\n".join(lines)


def _batches(papers: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    it = iter(papers)
    while batch := list(islice(it, size)):
        yield batch


class _Progress:
    """A tqdm bar over the input's records, its total counted first
    (`rag.formats.count.count_records`, `.gz` included, streaming: no file is held in memory),
    and the same figures in `data_dir` for a UI running beside this ingest (`rag.ingest_status`;
    without the bar nothing is counted, and the UI shows papers done only)."""

    def __init__(self, enabled: bool, files: list[Path], data_dir: Path | None = None):
        self.bar = None
        self.data_dir = data_dir
        self.total = None
        if enabled:
            from tqdm import tqdm

            from rag.formats.count import count_records

            self.total = count_records(files)
            self.bar = tqdm(total=self.total, unit="paper", desc="ingesting", dynamic_ncols=True)
        self.at(0)

    def at(self, done: int):
        if self.data_dir is not None:
            ingest_status.write(self.data_dir, done, self.total)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self):
        if self.data_dir is not None:
            ingest_status.clear(self.data_dir)
        if self.bar is not None:
            self.bar.close()


def ingest(
    paths: Iterable[Path],
    settings: Settings,
    store: Store,
    embedder: Embedder | None = None,
    counter: TokenCounter | None = None,
    progress: bool = False,
    batch_papers: int = BATCH_PAPERS,
    reuse: Store | None = None,
    replace: bool = False,
) -> IngestReport:
    """Bring `store` up to date with the papers in `paths`; returns what happened.

    `reuse`: another index of the same model (the live one, when `--rebuild` builds a new
    generation beside it) whose vectors are copied for the chunks it holds instead of
    embedding their text again; a chunk's id carries its text's hash, so an id found there
    is that same text's vector.

    The embedder (and with it torch) is created only if something needs embedding. Each
    batch of `batch_papers` papers is committed before the next is read, then announced to
    open indexes (`Store.publish`). Two writers at once lose papers: a caller that may run
    beside another ingest holds `rag.writer_lock.writer_lock` (as `rag ingest` does).

    `replace`: each file read replaces its source: once the whole run has committed, a
    stored paper of that source that the file no longer holds is removed (an upload of a new
    version of `my.bib`), so the source's count is the file's papers. Off by default: a bad
    or partial file can then only add or update.
    """
    if batch_papers < 1:
        raise ValueError(f"batch_papers must be at least 1, not {batch_papers}")
    start = time.perf_counter()
    stream = PaperStream(paths)
    report = IngestReport(files=len(stream.files))
    chunker: Chunker | None = None
    per_source: Counter[str] = Counter()
    taken: set[str] = set()  # title-keyed ids given out in this run
    read_ids: dict[str, set[str]] = {}  # source -> ids of its papers read in this run (`replace`)
    bar = _Progress(progress, stream.files, settings.data_dir)
    lexical: LexicalIndex | None = None
    try:
        for batch in _batches(stream, batch_papers):
            todo = []
            for paper, digest, status in _resolve(batch, store, taken):
                if replace:
                    read_ids.setdefault(paper.source, set()).add(paper.paper_id)
                if status == "unchanged":
                    report.unchanged += 1
                    continue
                if status == "new":
                    report.new += 1
                else:
                    report.updated += 1
                todo.append((paper, digest))
            if todo:
                if chunker is None:
                    chunker = Chunker(counter or TokenCounter(settings.embed_model, settings.model_cache_dir),
                                      settings.chunk_size, settings.chunk_overlap)
                if embedder is None:
                    embedder = Embedder.from_settings(settings, for_queries=False)
                if lexical is None:
                    lexical = open_lexical(store)
                    reuse = vector_source(settings, reuse)  # and the vectors shipped with the package
                _store_papers(todo, chunker, embedder, store, report, lexical, reuse)
                store.publish()  # open indexes reload and see this batch
            per_source.update(p.source for p in batch)
            bar.at(stream.read + stream.skipped_records)
        if replace:
            _drop_unread(store, read_ids, lexical)
    finally:
        stopped_by = sys.exc_info()[1]  # an error or Ctrl-C that is ending the run, if any
        bar.close()
        if lexical is not None:
            lexical.close()  # releases the lexical writer lock
        report.read, report.duplicates = stream.read, stream.duplicates
        report.skipped = stream.skipped
        report.seconds = time.perf_counter() - start
        if per_source:  # the committed batches, also when interrupted
            try:
                store.record_sources(dict(per_source))
                files = {f.name: f for f in stream.files}  # a source is its file's name
                remember_paths(settings, {name: files[name] for name in per_source if name in files})
            except Exception:
                if stopped_by is None:
                    raise  # else keep the error that stopped the run, not this consequence of it
    return report


def _stored(store: Store, ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """paper id -> (content hash, source file) of the ids that are stored."""
    if not ids:
        return {}
    # A record without this version's filter fields reads as a different hash: "updated".
    return {pid: (f.get("content_hash") if f.get("filter_fields") == FILTER_FIELDS else None, f.get("source"))
            for pid, f in store.records(ids)}


def _title_versions(store: Store, papers: list[Paper]) -> dict[str, dict[str, tuple]]:
    """For each title-keyed paper's title (keyed by its v1 id): its stored versions,
    id -> (content hash, source). Versions are numbered without gaps, so look until one is
    missing."""
    titles = {paper_id_for(p.title): p.title for p in papers}
    found: dict[str, dict[str, tuple]] = {key: {} for key in titles}
    first = 1
    while titles:
        wanted = {paper_id_for(t, v): key for key, t in titles.items() for v in range(first, first + 4)}
        stored = _stored(store, list(wanted))
        for pid, info in stored.items():
            found[wanted[pid]][pid] = info
        titles = {key: t for key, t in titles.items()
                  if all(paper_id_for(t, v) in stored for v in range(first, first + 4))}
        first += 4
    return found


def _resolve(batch: list[Paper], store: Store, taken: set[str]) -> list[tuple[Paper, str, str]]:
    """(paper with its final id, content hash, "new" | "updated" | "unchanged") for each
    paper of the batch, comparing with what the store holds (see the module docstring)."""
    digests = [content_hash(p) for p in batch]
    titled = [p for p in batch if p.paper_id.startswith("t-")]
    versions = _title_versions(store, titled) if titled else {}
    explicit = _stored(store, [p.paper_id for p in batch if not p.paper_id.startswith("t-")])
    out: list[tuple[Paper, str, str] | None] = [None] * len(batch)
    later = []
    for i, (paper, digest) in enumerate(zip(batch, digests)):
        if not paper.paper_id.startswith("t-"):
            known = explicit.get(paper.paper_id)
            status = "new" if known is None else "unchanged" if known[0] == digest else "updated"
            out[i] = (paper, digest, status)
            continue
        stored = versions[paper_id_for(paper.title)]
        same = next((pid for pid, (h, _) in stored.items() if h == digest and pid not in taken), None)
        if same:
            taken.add(same)
            out[i] = (replace(paper, paper_id=same), digest, "unchanged")
        else:
            later.append(i)
    for i in later:  # after all exact matches, so an edit never takes a version that is unchanged
        paper, digest = batch[i], digests[i]
        stored = versions[paper_id_for(paper.title)]
        edits = [pid for pid, (_, src) in stored.items() if src == paper.source and pid not in taken]
        if edits:
            pid = paper.paper_id if paper.paper_id in edits else edits[0]
            status = "updated"
        else:
            v = 1
            while (pid := paper_id_for(paper.title, v)) in stored or pid in taken:
                v += 1
            status = "new"
        taken.add(pid)
        out[i] = (replace(paper, paper_id=pid), digest, status)
    return out  # type: ignore[return-value]


def _store_papers(todo: list[tuple[Paper, str]], chunker: Chunker, embedder: Embedder,
                  store: Store, report: IngestReport, lexical: LexicalIndex, reuse: Store | None = None) -> None:
    chunks: dict[str, list[Chunk]] = {p.paper_id: chunker.chunks(p) for p, _ in todo}
    by_id = {p.paper_id: p for p, _ in todo}
    flat = [c for cs in chunks.values() for c in cs]
    vectors = store.chunk_vectors([c.chunk_id for c in flat])
    # Longest first, across the whole batch of papers: each encode batch then holds chunks of
    # similar length and pads little. Order does not matter for safety: paper records, the
    # commit markers, are written only after all their chunks.
    missing = sorted((c for c in flat if c.chunk_id not in vectors), key=lambda c: -len(c.text))
    report.chunks_reused += len(flat) - len(missing)
    reused = [c for c in flat if c.chunk_id in vectors]
    if reused:  # their paper's metadata (filter fields) may have changed
        store.chunks.update(ids=[c.chunk_id for c in reused], metadatas=[_chunk_meta(c, by_id) for c in reused])

    def add(part: list[Chunk], emb: np.ndarray) -> None:
        # `add`, not `upsert`: these ids were just found absent (the writer lock keeps it so),
        # and Chroma's one writer thread spends less on an add.
        store.chunks.add(ids=[c.chunk_id for c in part], embeddings=emb, documents=[c.text for c in part],
                         metadatas=[_chunk_meta(c, by_id) for c in part])
        vectors.update(zip((c.chunk_id for c in part), emb))

    if reuse is not None and missing and (copied := reuse.chunk_vectors([c.chunk_id for c in missing])):
        part = [c for c in missing if c.chunk_id in copied]
        add(part, np.stack([copied[c.chunk_id] for c in part]))
        report.chunks_reused += len(part)
        missing = [c for c in missing if c.chunk_id not in copied]
    # Large parts: sentence-transformers sorts by length within one encode call, so bigger
    # calls pad less (the paper records still commit per batch of papers).
    step = max(embedder.batch_size * 16, 256)
    for i in range(0, len(missing), step):
        part = missing[i:i + step]
        add(part, embedder.embed([c.text for c in part]))
        report.chunks_embedded += len(part)
    keep = {c.chunk_id for c in flat}
    present = store.chunks.get(where={"paper_id": {"$in": list(chunks)}}, include=[])
    stale = [cid for cid in present["ids"] if cid not in keep]
    if stale:
        store.chunks.delete(ids=stale)
        report.stale_chunks_deleted += len(stale)
    commit_papers(store, lexical, todo, chunks, vectors)


def commit_papers(store: Store, lexical: LexicalIndex, todo: list[tuple[Paper, str]],
                  chunks: dict[str, list[Chunk]], vectors: dict[str, np.ndarray]) -> None:
    """The end of a batch, once every chunk of `todo`'s papers is stored in Chroma (and its
    stale chunks are gone): the lexical documents, the server's ingest-log entry, and last
    the paper records (the commit marker, `Store.put_papers`).
    `chunks`: paper id -> its chunks; `vectors`: chunk id -> vector. The caller publishes."""
    papers = [p for p, _ in todo]
    lexical.replace(papers, chunk_docs((c.chunk_id, c.paper_id, c.text) for p in papers for c in chunks[p.paper_id]),
                    [name_record(p) for p in papers])
    entry = log_batch(store, [p.paper_id for p in papers]) if store.is_server else None
    store.put_papers([(p, d, len(chunks[p.paper_id])) for p, d in todo],
                     {p.paper_id: [vectors[c.chunk_id] for c in chunks[p.paper_id]] for p in papers})
    if entry is not None:
        mark_applied(lexical, entry)  # this host's copy holds the batch already


def write_papers(store: Store, lexical: LexicalIndex, items: list[tuple[Paper, str, list[Chunk], np.ndarray]]) -> None:
    """Store papers whose chunk vectors are already computed (a loader of precomputed
    vectors, `bench.scale`): `items` are (paper, content hash, its chunks, their vectors as
    a (chunks, dim) array). The papers must be new (no stale chunks to remove). Chunks with
    their filter metadata first, then `commit_papers`; the caller publishes."""
    by_id = {p.paper_id: p for p, _, _, _ in items}
    flat = [c for _, _, cs, _ in items for c in cs]
    vecs = np.concatenate([v for _, _, _, v in items]).astype(np.float32, copy=False)
    store.chunks.add(ids=[c.chunk_id for c in flat], embeddings=vecs, documents=[c.text for c in flat],
                        metadatas=[_chunk_meta(c, by_id) for c in flat])
    commit_papers(store, lexical, [(p, d) for p, d, _, _ in items], {p.paper_id: cs for p, _, cs, _ in items},
                  dict(zip((c.chunk_id for c in flat), vecs)))


def _chunk_meta(chunk: Chunk, papers: dict[str, Paper]) -> dict:
    return {"paper_id": chunk.paper_id, "index": chunk.index, **filter_metadata(papers[chunk.paper_id])}


def _delete_papers(store: Store, lexical: LexicalIndex, ids: list[str]) -> None:
    """Delete papers: their records first (the commit markers), then chunks and lexical
    documents, and announce it. A run killed between leaves phantoms that queries drop."""
    entry = log_batch(store, ids, deleted=True) if store.is_server else None
    store.papers.delete(ids=ids)
    store.chunks.delete(where={"paper_id": {"$in": ids}})
    lexical.delete(ids)
    if entry is not None:
        mark_applied(lexical, entry)
    store.publish()


def _drop_unread(store: Store, read_ids: dict[str, set[str]], lexical: LexicalIndex | None) -> None:
    """`ingest(replace=True)`: remove each source's stored papers that this run did not read."""
    for source, ids in read_ids.items():
        stored = store.papers.get(where={"source": {"$eq": source}}, include=[])["ids"]
        if stale := [pid for pid in stored if pid not in ids]:
            own = lexical or open_lexical(store)
            try:
                for i in range(0, len(stale), BATCH_PAPERS * 4):
                    _delete_papers(store, own, stale[i:i + BATCH_PAPERS * 4])
            finally:
                if lexical is None:
                    own.close()


def remove_source(settings: Settings, source: str, store: Store | None = None) -> int:
    """Remove every paper ingested from `source` (a file name as `rag stats` lists it), from
    Chroma and the lexical index alike; returns how many papers were removed. Paper records go
    first: they are the commit markers, so a run killed part-way leaves only phantom chunks
    and lexical documents, which queries drop and a rerun removes. The caller holds the
    writer lock (`rag.writer_lock`), as for `ingest`. `store`: the settings' store by default."""
    if store is None:
        from rag.store import open_client

        store = Store(open_client(settings, create=False), settings.embed_model, create=False)
    lexical = open_lexical(store)
    removed = 0
    try:
        while True:
            rows = store.papers.get(where={"source": {"$eq": source}}, include=[], limit=BATCH_PAPERS * 4)
            ids = rows["ids"]
            if not ids:
                break
            _delete_papers(store, lexical, ids)
            removed += len(ids)
        # Chunks left by a run killed between the two deletes above.
        while orphans := store.chunks.get(where={"source": {"$eq": source}}, include=["metadatas"], limit=5000):
            if not orphans["ids"]:
                break
            pids = sorted({m["paper_id"] for m in orphans["metadatas"]})
            stored = set(store.papers.get(ids=pids, include=[])["ids"])
            gone = [pid for pid in pids if pid not in stored]
            if not gone:
                break
            store.chunks.delete(where={"paper_id": {"$in": gone}})
            lexical.delete(gone)
        counts = store.sources()
        if source in counts:
            store.set_sources({k: v for k, v in counts.items() if k != source})
        forget_paths(settings, [source])
    finally:
        lexical.close()
    return removed


def rebuild_lexical(store: Store, progress: bool = False) -> int:
    """`rag ingest --rebuild-lexical`: the lexical index rebuilt from the store's committed
    papers and their chunk documents, read in pages (nothing is embedded); returns the number
    of papers indexed. The old index keeps answering until the new one is swapped in."""
    from rag.lexical_store import rebuild

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=store.papers.count(), unit="paper", desc="lexical index", dynamic_ncols=True)
    try:
        lex = rebuild(store, progress=(lambda done: bar.update(done - bar.n)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    store.publish()  # open indexes reload their lexical reader
    return lex.num_papers
