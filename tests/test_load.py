"""Load: one pipeline shared by 16 threads x 25 questions (varied, some repeated, some that
abstain), over the embedded bundled index and over a real Chroma server. Zero errors, and
every answer equal to the one the same question gets alone. Request count, error count and
p95 latency are printed; nothing is asserted about time.
"""

from __future__ import annotations

import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rag.ingest import ingest
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import Store, open_client

THREADS, PER_THREAD = 16, 25

BUNDLED_QUESTIONS = [
    "Which papers bridge CNNs and ViTs?",
    "What is CvT?",
    "How do vision transformers work?",
    "Which papers propose a new semantic segmentation method?",
    "How does ConViT differ from CvT?",
    "What is a good recipe for banana bread?",  # abstains
    "Which papers use knowledge distillation?",
    "What is MedMNIST-C?",
    "Who won the 2018 football World Cup?",  # abstains
    "Are there papers on quantum neural networks for remote sensing?",
    "fully convolutional networks",
    "What is the capital of France?",  # abstains
]


def outcome(a) -> tuple:
    return a.text, [c.paper_id for c in a.citations], a.abstained, [s.paper_id for s in a.sources]


def hammer(pipe, questions: list[str], label: str, capsys) -> None:
    alone = {q: outcome(pipe.answer(q)) for q in questions}
    assert any(o[2] for o in alone.values()) and not all(o[2] for o in alone.values())

    def worker(i: int) -> list[tuple[str, float, tuple | str]]:
        out = []
        for j in range(PER_THREAD):
            q = questions[(7 * i + j) % len(questions)]
            t0 = time.perf_counter()
            try:
                got: tuple | str = outcome(pipe.answer(q))
            except Exception:  # counted, and shown below
                got = traceback.format_exc()
            out.append((q, time.perf_counter() - t0, got))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for rs in pool.map(worker, range(THREADS)) for r in rs]
    wall = time.perf_counter() - t0
    errors = [got for _, _, got in results if isinstance(got, str)]
    latencies = np.array([dt for _, dt, _ in results])
    p50, p95 = np.percentile(latencies, [50, 95])
    with capsys.disabled():
        print(f"\n[load:{label}] requests {len(results)}, errors {len(errors)}, "
              f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"{len(results) / wall:.1f} answers/s over {wall:.0f} s")
    assert len(results) == THREADS * PER_THREAD
    assert errors == [], errors[0]
    mismatched = [q for q, _, got in results if got != alone[q]]
    assert mismatched == []


def test_load_embedded(pipeline, capsys):
    hammer(pipeline, BUNDLED_QUESTIONS, "embedded", capsys)


def test_load_chroma_server(chroma_server, tmp_path, real_papers, write_corpus, embedder, capsys):
    host, port = chroma_server
    settings = Settings(data_dir=tmp_path / "unused", chroma_host=host, chroma_port=port)
    papers = real_papers[400:430]
    corpus = write_corpus(tmp_path / "small.jsonl", papers)
    report = ingest([corpus], settings, Store(open_client(settings), settings.embed_model), embedder=embedder)
    assert report.new == 30
    pipe = build_pipeline(settings, embedder=embedder)
    assert len(pipe.index.papers) == 30
    questions = [p.title for p in papers[:6]] + [
        f"What does {papers[7].title.split(':')[0]} propose?",
        "Which papers are about image classification?",
        "What is a good recipe for banana bread?",  # abstains
        "Who won the 2018 football World Cup?",  # abstains
    ]
    hammer(pipe, questions, "chroma server", capsys)
