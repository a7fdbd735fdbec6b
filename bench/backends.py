"""Embedding backends compared on the bundled corpus's chunk texts: speed and retrieval quality.

Throughput: each variant (torch fp32 at batch sizes 16-128 and 1 or all threads; the ONNX
variants of `bench.encoders` when they can be built) encodes the chunk texts of every
`every`-th paper, `reps` times, round-robin across variants; the figure is the median
chunks per second.

Quality, against torch fp32 at batch size 64 (the project's `Embedder`):
- mean and minimum cosine between a variant's vectors and the reference vectors of the
  same texts;
- top-10 overlap: the corpus (or, with `quality_every` > 1, every n-th paper of it) is
  indexed twice by the real `rag.ingest.ingest`, once with each set of vectors, and
  `Pipeline.retrieve(q, k=10)` runs on both for every eval question, queries embedded by
  the variant itself; the figure is the mean share of the reference's ten papers that the
  variant also returns. Torch variants only reorder the same arithmetic, so their overlap is
  computed only when their cosine is below 0.99999.
A variant "holds" quality when both 1 - mean cosine and 1 - overlap are at most 0.01.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.encoders import OnnxEncoder, TorchEncoder, build_onnx_variants, onnx_available
from bench.measure import load_questions, peak_rss_mb, summary
from rag.embedding import Embedder, model_path
from rag.settings import Settings

QUALITY_TOLERANCE = 0.01


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

    s = Settings()
    chunker = Chunker(TokenCounter(model), s.chunk_size, s.chunk_overlap)
    return [c.text for p in papers for c in chunker.chunks(p)]


def _throughput(encoders: list, texts: list[str], reps: int) -> tuple[list[dict], list[np.ndarray]]:
    """Speed of each encoder on `texts`. The runs go round-robin (every encoder once, then
    again), so load from elsewhere that comes and goes hits all of them alike."""
    for enc in encoders:
        enc.embed(texts[:4])  # warm-up
    times: list[list[float]] = [[] for _ in encoders]
    vectors: list[np.ndarray] = [None] * len(encoders)  # type: ignore[list-item]
    for _ in range(reps):
        for i, enc in enumerate(encoders):
            t = time.perf_counter()
            vectors[i] = enc.embed(texts)
            times[i].append(time.perf_counter() - t)
    speeds = [{"seconds": summary(ts), "chunks_per_second": round(len(texts) / summary(ts)["median"], 2)}
              for ts in times]
    return speeds, vectors


def _cosine(a: np.ndarray, b: np.ndarray) -> dict:
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"mean": round(float(cos.mean()), 6), "min": round(float(cos.min()), 6)}


def _top10(encoder, papers_file: Path, work: Path, questions: list[str]) -> list[list[str]]:
    """Index `papers_file` with `encoder`'s vectors (through the real ingest) and return the
    ten best paper ids for each question."""
    from rag.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.store import Store, open_client

    s = Settings(data_dir=Path(tempfile.mkdtemp(prefix="index-", dir=work)), corpus_paths=[papers_file])
    store = Store(open_client(s), s.embed_model)
    ingest([papers_file], s, store, embedder=encoder)
    pipe = build_pipeline(s, store=store, embedder=encoder)
    return [[src.paper_id for src in pipe.retrieve(q, k=10)] for q in questions]


def _overlap(ref: list[list[str]], other: list[list[str]]) -> float:
    shares = [len(set(a) & set(b)) / len(a) for a, b in zip(ref, other) if a]
    return round(float(np.mean(shares)), 4) if shares else 0.0


def stage_backends(corpus: str, work: str, questions: str, every: int = 4, quality_every: int = 1, reps: int = 3,
                   batch_sizes: tuple = (16, 32, 64, 128), model: str = "all-MiniLM-L6-v2") -> dict:
    import torch

    work_dir = Path(work)
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    _, sample_papers = _subset(Path(corpus), every, tmp)
    texts = _chunk_texts(sample_papers, model)
    quality_file, quality_papers = _subset(Path(corpus), quality_every, tmp)
    quality_texts = _chunk_texts(quality_papers, model)
    qs = load_questions(Path(questions))

    embedder = Embedder(model, 64)
    cores = torch.get_num_threads()
    variants = [TorchEncoder(embedder, bs) for bs in batch_sizes if bs != 64]  # bs 64 is the reference
    if cores > 1:
        variants.append(TorchEncoder(embedder, 64, threads=1))
    reference = TorchEncoder(embedder, 64)

    unavailable = onnx_available()
    if unavailable is None:
        mdir = model_path(model)
        built = build_onnx_variants(mdir, work_dir / "onnx")
        variants += [OnnxEncoder(name, path, mdir) for name, path in built.items()]

    try:
        rows = _compare(reference, variants, texts, quality_texts, quality_file, tmp, qs, every == quality_every, reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"sample_papers": len(sample_papers), "sample_chunks": len(texts), "quality_papers": len(quality_papers),
            "quality_chunks": len(quality_texts), "questions": len(qs), "reps": reps, "torch_threads_default": cores,
            "onnx": unavailable or "available", "variants": rows, "peak_rss_mb": peak_rss_mb()}


def _compare(reference, variants, texts, quality_texts, quality_file, tmp, qs, same_set: bool, reps: int) -> list[dict]:
    speeds, all_vectors = _throughput([reference, *variants], texts, reps)
    ref_vectors = all_vectors[0]
    rows = [{"variant": reference.name + " (default)", **speeds[0], "cosine": {"mean": 1.0, "min": 1.0},
             "top10_overlap": 1.0}]
    ref_quality_vectors = ref_vectors if same_set else reference.embed(quality_texts)
    ref_top10 = _top10(CachedEncoder(reference, quality_texts, ref_quality_vectors), quality_file, tmp, qs)
    for variant, speed, vectors in zip(variants, speeds[1:], all_vectors[1:]):
        row = {"variant": variant.name, **speed, "cosine": _cosine(vectors, ref_vectors), "top10_overlap": None}
        if isinstance(variant, OnnxEncoder) or row["cosine"]["min"] < 0.99999:
            qv = vectors if same_set else variant.embed(quality_texts)
            row["quality_cosine"] = _cosine(qv, ref_quality_vectors)
            cached = CachedEncoder(variant, quality_texts, qv)
            row["top10_overlap"] = _overlap(ref_top10, _top10(cached, quality_file, tmp, qs))
        overlap = 1.0 if row["top10_overlap"] is None else row["top10_overlap"]
        row["quality_holds"] = (1 - row["cosine"]["mean"] <= QUALITY_TOLERANCE and 1 - overlap <= QUALITY_TOLERANCE)
        row["speedup"] = round(row["chunks_per_second"] / rows[0]["chunks_per_second"], 3)
        rows.append(row)
    return rows
