"""The in-process measurements of `bench.run`, each meant to run in a fresh process.

`python -m bench.stages NAME '<json params>'` runs one stage and prints its result as JSON on
the last line of stdout; `bench.run` starts each stage as a child so that its peak memory is
its own and no stage warms a cache for the next. Stages:
- `build`: fresh `rag.ingest.ingest` of the corpus into new directories, interleaved with the
  compute floor (sentence-transformers encoding the same chunk texts in one call);
- `noop`: `ingest` again over a complete index (nothing to embed);
- `warm`: `rag.retrieve` and `rag.answer` over the eval questions once the index is open.
The embedding-backend comparison (`backends`) and warm `retrieve()` per backend (`retrieve`)
live in `bench.backends`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import WARM_UP_QUESTION, bench_settings, load_questions, peak_rss_mb, summary
from rag.embedding import Embedder
from rag.settings import Settings


class TimedEmbedder:
    """The real embedder, counting the seconds `ingest` spends inside `embed`."""

    def __init__(self, embedder: Embedder):
        self.inner = embedder
        self.batch_size = embedder.batch_size
        self.seconds = 0.0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: list[str], progress: bool = False):
        start = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - start

    def embed_query(self, text: str):
        return self.inner.embed_query(text)


def stage_build(corpus: str, keep: str, model: str, reps: int = 3, batch_size: int = 64) -> dict:
    """Index builds and floor encodes, alternating. The first index is kept at `keep`."""
    from rag.chunking import Chunker
    from rag.corpus import PaperStream
    from rag.embedding import TokenCounter
    from rag.ingest import ingest
    from rag.store import Store, open_client

    corpus_path, keep_dir = Path(corpus), Path(keep)
    start = time.perf_counter()
    embedder = Embedder(model, batch_size, backend=Settings(embed_model=model).embed_backend)
    embedder.embed(["warm-up: the first encode pays for lazy initialisation"])
    load_seconds = time.perf_counter() - start

    # Chunking alone, as ingest does it (tokenizer loaded once, like ingest).
    counter = TokenCounter(model)
    defaults = Settings(data_dir=keep_dir, embed_model=model)
    chunker = Chunker(counter, defaults.chunk_size, defaults.chunk_overlap)
    t = time.perf_counter()
    n_chunks = sum(len(chunker.chunks(p)) for p in PaperStream([corpus_path]))
    chunk_seconds = time.perf_counter() - t

    builds, embeds, floors, texts, report = [], [], [], None, None
    for rep in range(reps):
        target = keep_dir if rep == 0 else Path(tempfile.mkdtemp(prefix="bench-build-"))
        shutil.rmtree(target, ignore_errors=True)
        s = bench_settings(target, corpus_path, embed_model=model, embed_batch_size=batch_size)
        timed = TimedEmbedder(embedder)
        t = time.perf_counter()
        store = Store(open_client(s), s.embed_model)
        report = ingest([corpus_path], s, store, embedder=timed)
        builds.append(time.perf_counter() - t)
        embeds.append(timed.seconds)
        if texts is None:
            texts = store.chunks.get(include=["documents"])["documents"]
        del store
        if rep:
            shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        embedder.embed(texts)
        floors.append(time.perf_counter() - t)
    build, floor = summary(builds), summary(floors)
    return {
        "papers": report.distinct, "chunks": len(texts), "chunks_by_chunker": n_chunks,
        "model_load_seconds": round(load_seconds, 3), "chunking_seconds": round(chunk_seconds, 3),
        "build_seconds": build, "embed_inside_ingest_seconds": summary(embeds), "floor_seconds": floor,
        "ratio": round(build["median"] / floor["median"], 3),
        "chunks_per_second_floor": round(len(texts) / floor["median"], 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def stage_noop(index: str, corpus: str, model: str, reps: int = 5) -> dict:
    """A re-ingest of an up-to-date index: opening the store and reading hashes, no embedding."""
    from rag.ingest import ingest
    from rag.store import Store, open_client

    s = bench_settings(Path(index), Path(corpus), embed_model=model)
    times, ingest_only, report = [], [], None
    for _ in range(reps):
        t = time.perf_counter()
        store = Store(open_client(s), s.embed_model)
        report = ingest([Path(corpus)], s, store)
        times.append(time.perf_counter() - t)
        ingest_only.append(report.seconds)
    assert report.chunks_embedded == 0 and report.new == 0, report.summary()
    return {"open_and_ingest_seconds": summary(times), "ingest_call_seconds": summary(ingest_only),
            "unchanged": report.unchanged, "peak_rss_mb": peak_rss_mb()}


def stage_warm(index: str, corpus: str, questions: str, model: str, passes: int = 3) -> dict:
    """Warm latency of the public API, extractive answerer, once the index is open.

    "new": a question this process has not seen (the embedder remembers recent questions, so
    only a first sight pays for embedding it): `retrieve()` over every other question, and
    `answer()` over the rest. "repeated": every question again, `passes` times.
    """
    import rag

    s = bench_settings(Path(index), Path(corpus), embed_model=model, answerer="extractive")
    qs = load_questions(Path(questions))
    t = time.perf_counter()
    rag.retrieve(WARM_UP_QUESTION, settings=s)  # opens the index and loads the model
    open_seconds = time.perf_counter() - t
    rag.answer(WARM_UP_QUESTION, settings=s)  # first-use initialisation of the answer path

    def timed(fn, q) -> float:
        t = time.perf_counter()
        fn(q, settings=s)
        return (time.perf_counter() - t) * 1000

    new_retrieve = [timed(rag.retrieve, q) for q in qs[0::2]]
    new_answer = [timed(rag.answer, q) for q in qs[1::2]]
    retrieve_ms, answer_ms, abstained = [], [], 0
    for _ in range(passes):
        for q in qs:
            retrieve_ms.append(timed(rag.retrieve, q))
            t = time.perf_counter()
            abstained += rag.answer(q, settings=s).abstained
            answer_ms.append((time.perf_counter() - t) * 1000)
    return {"questions": len(qs), "passes": passes, "open_seconds": round(open_seconds, 3),
            "new_retrieve_ms": summary(new_retrieve, 2), "new_answer_ms": summary(new_answer, 2),
            "retrieve_ms": summary(retrieve_ms, 2), "answer_ms": summary(answer_ms, 2),
            "query_embed_ms": _query_embed_ms(rag.default_assistant(s).pipeline.index.embedder, qs),
            "abstained_share": round(abstained / len(answer_ms), 3), "peak_rss_mb": peak_rss_mb()}


def _query_embed_ms(embedder: Embedder, questions: list[str]) -> dict:
    """Embedding one question (`embed`, which bypasses the question cache), the part of a new
    question's `retrieve()` that runs the model, with 1 thread and with all cores (torch's
    count is set per process; an ONNX session's when it opens, so one is opened per count)."""
    import os

    out = {}
    for threads in dict.fromkeys([1, os.cpu_count() or 1]):
        emb = embedder
        if embedder.backend == "torch":
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(threads)
        else:
            emb = Embedder(embedder.model_name, 1, threads=threads, backend=embedder.backend)
            emb.embed(["warm-up"])
        times = []
        for q in questions:
            t = time.perf_counter()
            emb.embed([q])
            times.append((time.perf_counter() - t) * 1000)
        out[f"threads_{threads}"] = summary(times, 2)
        if embedder.backend == "torch":
            torch.set_num_threads(before)
    return out


STAGES = {"build": stage_build, "noop": stage_noop, "warm": stage_warm}


def main(argv: list[str]) -> int:
    name, params = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    if name in ("backends", "retrieve"):
        from bench import backends

        fn = backends.stage_backends if name == "backends" else backends.stage_retrieve
    else:
        fn = STAGES[name]
    result = fn(**params)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
