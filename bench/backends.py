"""Embedding backends compared per packaged model on the bundled corpus: speed and retrieval quality.

The backends are the project's own `Embedder` with `backend=` "torch" (sentence-transformers on
PyTorch, the reference), "onnx" (`rag.onnx_model`: the same model exported to ONNX Runtime)
and "onnx-int8" (its dynamic int8 quantisation). For each:
- one question: `embed([q])` (the question cache bypassed) over the eval questions, with 1
  thread and with every core, the backends interleaved question by question;
- a batch of chunks: the chunk texts of every `every`-th paper, `reps` times round-robin
  across backends, at the Settings batch size; the figure is the median chunks per second.

Quality against torch: mean and minimum cosine of the chunk vectors, and the top-10 overlap:
the corpus (every `quality_every`-th paper of it) is indexed by the real `rag.ingest.ingest`
once with each backend's vectors (shipped vectors off), and `Pipeline.retrieve(q, k=10)` runs
for every eval question, each query embedded by its own backend; the figure is the mean share
of torch's ten papers the backend also returns. A backend "holds" when the overlap is at least
0.99 (the project's quality rule); the fastest backend that holds is the one to adopt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import WARM_UP_QUESTION, bench_settings, load_questions, peak_rss_mb, summary
from rag.embedding import Embedder
from rag.settings import Settings

BACKENDS = ("torch", "onnx", "onnx-int8")
OVERLAP_RULE = 0.99


class CachedEncoder:
    """Vectors already computed for these texts; anything else is encoded by `inner`."""

    def __init__(self, inner, texts: list[str], vectors: np.ndarray):
        self.inner = inner
        self.batch_size = inner.batch_size
        self.cache = dict(zip(texts, vectors))

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        missing = [t for t in texts if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed(missing)))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def _subset(corpus: Path, every: int, work: Path) -> tuple[Path, list]:
    """A JSON Lines file with every `every`-th paper of the corpus, and those papers."""
    from rag.corpus import PaperStream

    papers = list(PaperStream([corpus]))[::every]
    path = work / f"papers-every-{every}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for p in papers:
            fh.write(json.dumps({"id": p.paper_id, "title": p.title, "abstract": p.abstract}) + "\n")
    return path, papers


def _chunk_texts(papers: list, model: str) -> list[str]:
    from rag.chunking import Chunker
    from rag.embedding import TokenCounter

    s = Settings(embed_model=model)
    chunker = Chunker(TokenCounter(model), s.chunk_size, s.chunk_overlap)
    return [c.text for p in papers for c in chunker.chunks(p)]


def _set_threads(embedder: Embedder, threads: int) -> None:
    if embedder.backend == "torch":
        import torch

        torch.set_num_threads(threads)


def _throughput(embedders: dict[str, Embedder], texts: list[str], reps: int) -> tuple[dict, dict]:
    """Chunks per second of each backend on `texts`, round-robin, so load from elsewhere that
    comes and goes hits all of them alike; and each backend's vectors."""
    times: dict[str, list[float]] = {name: [] for name in embedders}
    vectors = {}
    for _ in range(reps):
        for name, emb in embedders.items():
            _set_threads(emb, os.cpu_count() or 1)
            t = time.perf_counter()
            vectors[name] = emb.embed(texts)
            times[name].append(time.perf_counter() - t)
    return {n: round(len(texts) / summary(ts)["median"], 2) for n, ts in times.items()}, vectors


def _query_ms(model: str, embedders: dict[str, Embedder], questions: list[str]) -> dict[str, dict[int, dict]]:
    """backend -> threads -> ms of embedding one question, the backends interleaved. torch's
    thread count is process-wide (set per call); an ONNX session's is fixed when it opens."""
    cores = os.cpu_count() or 1
    counts = list(dict.fromkeys([1, cores]))
    runs = {(b, n): emb if b == "torch" or n == cores else Embedder(model, 1, threads=n, backend=b)
            for b, emb in embedders.items() for n in counts}
    for (_, n), emb in runs.items():
        _set_threads(emb, n)
        emb.embed(["warm-up question"])
    times: dict[tuple, list[float]] = {key: [] for key in runs}
    for q in questions:
        for (b, n), emb in runs.items():
            _set_threads(emb, n)
            t = time.perf_counter()
            emb.embed([q])
            times[(b, n)].append((time.perf_counter() - t) * 1000)
    _set_threads(embedders["torch"], cores)
    return {b: {n: summary(times[(b, n)], 2) for n in counts} for b in embedders}


def _cosine(a: np.ndarray, b: np.ndarray) -> dict:
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"mean": round(float(cos.mean()), 6), "min": round(float(cos.min()), 6)}


def _top10(encoder, model: str, papers_file: Path, work: Path, questions: list[str]) -> list[list[str]]:
    """Index `papers_file` with `encoder`'s vectors (the real ingest, nothing shipped) and
    return the ten best paper ids for each question."""
    from rag.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.store import Store, open_client

    s = Settings(data_dir=Path(tempfile.mkdtemp(prefix="index-", dir=work)), corpus_paths=[papers_file],
                 embed_model=model, shipped_vectors=False)
    store = Store(open_client(s), s.embed_model)
    ingest([papers_file], s, store, embedder=encoder)
    pipe = build_pipeline(s, store=store, embedder=encoder)
    return [[src.paper_id for src in pipe.retrieve(q, k=10)] for q in questions]


def _overlap(ref: list[list[str]], other: list[list[str]]) -> float:
    shares = [len(set(a) & set(b)) / len(a) for a, b in zip(ref, other) if a]
    return round(float(np.mean(shares)), 4) if shares else 0.0


def compare_model(model: str, corpus: Path, questions: list[str], tmp: Path, every: int, quality_every: int,
                  reps: int) -> dict:
    """The backend table of one model (see the module docstring)."""
    _, sample = _subset(corpus, every, tmp)
    texts = _chunk_texts(sample, model)
    quality_file, quality_papers = _subset(corpus, quality_every, tmp)
    quality_texts = _chunk_texts(quality_papers, model)
    batch = Settings(embed_model=model).embed_batch_size
    t = time.perf_counter()
    embedders = {b: Embedder(model, batch, backend=b) for b in BACKENDS}
    for emb in embedders.values():
        emb.embed(texts[:2])  # loads (and on first use exports) the model
    load_seconds = round(time.perf_counter() - t, 2)
    speeds, vectors = _throughput(embedders, texts, reps)
    query = _query_ms(model, embedders, questions)
    quality_vectors = {b: (vectors[b] if every == quality_every else e.embed(quality_texts))
                       for b, e in embedders.items()}
    ref_top10 = _top10(CachedEncoder(embedders["torch"], quality_texts, quality_vectors["torch"]), model,
                       quality_file, tmp, questions)
    rows = []
    for b, emb in embedders.items():
        overlap = 1.0 if b == "torch" else _overlap(ref_top10, _top10(
            CachedEncoder(emb, quality_texts, quality_vectors[b]), model, quality_file, tmp, questions))
        rows.append({"backend": b, "chunks_per_second": speeds[b],
                     "speedup": round(speeds[b] / speeds["torch"], 3),
                     "query_ms": {str(n): st for n, st in query[b].items()},
                     "cosine": _cosine(vectors[b], vectors["torch"]), "top10_overlap": overlap,
                     "quality_holds": overlap >= OVERLAP_RULE})
    return {"sample_papers": len(sample), "sample_chunks": len(texts), "quality_papers": len(quality_papers),
            "quality_chunks": len(quality_texts), "batch_size": batch, "load_and_export_seconds": load_seconds,
            "rows": rows}


def stage_backends(corpus: str, work: str, questions: str, models: list[str], every: int = 4,
                   quality_every: int = 1, reps: int = 3, **_old) -> dict:
    from rag.embedding import set_torch_threads

    set_torch_threads(0)  # torch's OpenMP spin as the query path sets it, before torch loads
    tmp = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    qs = load_questions(Path(questions))
    try:
        per_model = {m: compare_model(m, Path(corpus), qs, tmp, every, quality_every, reps) for m in models}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"questions": len(qs), "reps": reps, "cores": os.cpu_count(), "models": per_model,
            "peak_rss_mb": peak_rss_mb()}


def stage_retrieve(index: str, corpus: str, questions: str, model: str, backends: list[str] | None = None,
                   **_old) -> dict:
    """Warm `retrieve()` per backend on the benchmark's index (its vectors are the build's;
    only the question is embedded by each backend). One pipeline, its embedder swapped per
    call; the backends interleaved question by question, each question new to every embedder
    (nothing cached). Also each backend's top-10 overlap with torch's on these questions."""
    import rag
    from rag.embedding import set_torch_threads

    s = bench_settings(Path(index), Path(corpus), embed_model=model, answerer="extractive")
    qs = load_questions(Path(questions))
    names = list(backends or BACKENDS)
    # The query path's embedders, as `Embedder.from_settings` builds them (torch's threads and
    # spin set first); onnx-int8 is no Settings value, so each is built here with its backend.
    set_torch_threads(s.embed_threads)
    embedders = {b: Embedder(model, s.embed_batch_size, s.embed_threads, device=s.embed_device,
                             cache_dir=s.model_cache_dir, backend=b) for b in names}
    pipe = rag.default_assistant(s).pipeline
    for emb in embedders.values():
        pipe.index.embedder = emb
        pipe.retrieve(WARM_UP_QUESTION, settings=s)  # loads the model, first-use initialisation
    times: dict[str, list[float]] = {b: [] for b in names}
    top10: dict[str, list[list[str]]] = {b: [] for b in names}
    for q in qs:
        for b in names:
            pipe.index.embedder = embedders[b]
            t = time.perf_counter()
            found = pipe.retrieve(q, settings=s)
            times[b].append((time.perf_counter() - t) * 1000)
            top10[b].append([src.paper_id for src in found])
    return {"questions": len(qs), "model": model, "peak_rss_mb": peak_rss_mb(),
            "rows": [{"backend": b, "retrieve_ms": summary(times[b], 2),
                      "top10_overlap_vs_torch": _overlap(top10["torch"], top10[b]) if "torch" in top10 else None}
                     for b in names]}
