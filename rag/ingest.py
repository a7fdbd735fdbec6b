"""Incremental, idempotent, crash-safe ingestion of paper files into the store.

For each batch of papers read from the files:
1. papers whose stored content hash matches are *unchanged*: nothing is chunked or embedded;
2. the others are chunked; chunk ids are content hashes, so chunks already stored (by an
   interrupted run, or unchanged passages of an edited abstract) are reused, never re-embedded;
3. missing chunks are embedded and upserted, then the paper's stale chunks are deleted;
4. last, the paper record is upserted: it is the commit marker. A run killed anywhere before
   that leaves no paper record (or the old hash), so the next run redoes exactly that paper.

Papers are never deleted because a file lacks them: ingesting a bad or partial file can only
add or update, never lose what is indexed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from rag.chunking import Chunker
from rag.corpus import PaperStream, Skipped, content_hash
from rag.embedding import Embedder, TokenCounter
from rag.models import Chunk, Paper
from rag.settings import Settings
from rag.store import Store, paper_metadata

BATCH_PAPERS = 256


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
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def distinct(self) -> int:
        return self.new + self.updated + self.unchanged

    def summary(self) -> str:
        lines = [
            f"files {self.files}, papers read {self.read} ({self.duplicates} duplicates merged), "
            f"new {self.new}, updated {self.updated}, unchanged {self.unchanged}, skipped {len(self.skipped)}",
            f"chunks embedded {self.chunks_embedded}, reused {self.chunks_reused}, "
            f"stale deleted {self.stale_chunks_deleted}; {self.seconds:.1f} s",
        ]
        lines += [f"  skipped {s}" for s in self.skipped[:50]]
        if len(self.skipped) > 50:
            lines.append(f"  ... and {len(self.skipped) - 50} more skipped records")
        return "\n".join(lines)


def _batches(papers: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    it = iter(papers)
    while batch := list(islice(it, size)):
        yield batch


class _Progress:
    """A tqdm bar whose total grows as batches reveal work (the stream's length is unknown)."""

    def __init__(self, enabled: bool):
        self.bar = None
        self.enabled = enabled

    def add(self, n: int):
        if not self.enabled or n == 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="chunk", desc="embedding", dynamic_ncols=True)
        self.bar.total += n
        self.bar.refresh()

    def update(self, n: int):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def ingest(
    paths: Iterable[Path],
    settings: Settings,
    store: Store,
    embedder: Embedder | None = None,
    counter: TokenCounter | None = None,
    progress: bool = False,
) -> IngestReport:
    """Bring `store` up to date with the papers in `paths`; returns what happened.

    The embedder (and with it torch) is created only if something needs embedding.
    """
    start = time.perf_counter()
    stream = PaperStream(paths)
    report = IngestReport(files=len(stream.files))
    chunker: Chunker | None = None
    per_source: Counter[str] = Counter()
    bar = _Progress(progress)
    try:
        for batch in _batches(stream, BATCH_PAPERS):
            per_source.update(p.source for p in batch)
            known = store.papers.get(ids=[p.paper_id for p in batch], include=["metadatas"])
            stored_hash = {pid: (m or {}).get("content_hash") for pid, m in zip(known["ids"], known["metadatas"])}
            todo = []
            for paper in batch:
                digest = content_hash(paper)
                if stored_hash.get(paper.paper_id) == digest:
                    report.unchanged += 1
                elif paper.paper_id in stored_hash:
                    report.updated += 1
                    todo.append((paper, digest))
                else:
                    report.new += 1
                    todo.append((paper, digest))
            if not todo:
                continue
            if chunker is None:
                chunker = Chunker(counter or TokenCounter(settings.embed_model), settings.chunk_size, settings.chunk_overlap)
            if embedder is None:
                embedder = Embedder(settings.embed_model, settings.embed_batch_size)
            _store_papers(todo, chunker, embedder, store, report, bar)
    finally:
        bar.close()
        report.read, report.duplicates = stream.read, stream.duplicates
        report.skipped = stream.skipped
        if per_source:
            store.record_sources(dict(per_source))
        report.seconds = time.perf_counter() - start
    return report


def _store_papers(todo: list[tuple[Paper, str]], chunker: Chunker, embedder: Embedder,
                  store: Store, report: IngestReport, bar: _Progress) -> None:
    chunks: dict[str, list[Chunk]] = {p.paper_id: chunker.chunks(p) for p, _ in todo}
    flat = [c for cs in chunks.values() for c in cs]
    got = store.chunks.get(ids=[c.chunk_id for c in flat], include=["embeddings"])
    vectors = {cid: np.asarray(v, dtype=np.float32) for cid, v in zip(got["ids"], got["embeddings"])}
    missing = [c for c in flat if c.chunk_id not in vectors]
    report.chunks_reused += len(flat) - len(missing)
    bar.add(len(missing))
    step = max(embedder.batch_size * 4, 1)
    for i in range(0, len(missing), step):
        part = missing[i:i + step]
        emb = embedder.embed([c.text for c in part])
        store.chunks.upsert(
            ids=[c.chunk_id for c in part], embeddings=emb, documents=[c.text for c in part],
            metadatas=[{"paper_id": c.paper_id, "index": c.index} for c in part],
        )
        vectors.update(zip((c.chunk_id for c in part), emb))
        report.chunks_embedded += len(part)
        bar.update(len(part))
    keep = {c.chunk_id for c in flat}
    present = store.chunks.get(where={"paper_id": {"$in": list(chunks)}}, include=[])
    stale = [cid for cid in present["ids"] if cid not in keep]
    if stale:
        store.chunks.delete(ids=stale)
        report.stale_chunks_deleted += len(stale)
    paper_vecs = []
    for paper, _ in todo:
        mean = np.mean([vectors[c.chunk_id] for c in chunks[paper.paper_id]], axis=0)
        paper_vecs.append(mean / (np.linalg.norm(mean) or 1.0))
    store.papers.upsert(
        ids=[p.paper_id for p, _ in todo], embeddings=np.stack(paper_vecs),
        documents=[p.abstract for p, _ in todo],
        metadatas=[paper_metadata(p, d, len(chunks[p.paper_id])) for p, d in todo],
    )
