"""The scale path against a real `chroma run` server: the benchmark's own loader and
measurements at a small size, and the assistant itself ingesting into and answering from a
Chroma server (RAG_CHROMA_HOST / RAG_CHROMA_PORT)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# `bench` is not an installed package (pyproject's packages.find lists rag, ui, eval): make the
# project root importable, as `python -m bench.run` does from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import QUESTIONS, load_questions  # noqa: E402
from bench.scale import chart, run_scale  # noqa: E402
from bench.synth import base_from_settings  # noqa: E402
from rag.corpus import PaperStream  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.pipeline import build_pipeline  # noqa: E402
from rag.settings import BUNDLED_CORPUS, Settings  # noqa: E402
from rag.store import Store, open_client  # noqa: E402

pytestmark = pytest.mark.chroma_server


def test_small_scale_run_on_a_chroma_server(chroma_server, bundled_settings, embedder, tmp_path):
    host, port = chroma_server
    base = base_from_settings(bundled_settings)
    questions = load_questions(QUESTIONS)[:8]
    result = run_scale(base, [1000, 2000], seed=3, batch=400, host=host, port=port, server_pid=None,
                       questions=questions, qvecs=embedder.embed(questions), app_max=1000,
                       work=tmp_path / "app", log=lambda _: None)

    points = result["points"]
    assert [p["papers"] for p in points] == [1000, 2000]
    for p in points:
        assert p["fewest_hits"] == 100  # every dense query filled its top-100
        assert p["query_ms"]["n"] == len(questions)
        assert p["bm25"]["query_ms"]["n"] == len(questions)
        assert p["load_rate"] > 0 and p["loader_rss_mb"] > 0
    # The assistant opened what the loader wrote and found papers for every question.
    assert points[0]["app"]["answered_share"] == 1.0
    assert "app" not in points[1]

    s = Settings(chroma_host=host, chroma_port=port, data_dir=tmp_path / "app")
    store = Store(open_client(s), s.embed_model, create=False)
    assert store.counts() == (2000, 2000)
    ids = store.papers.get(limit=5)["ids"]
    assert all(pid.startswith("syn3-") for pid in ids)

    png = tmp_path / "scale.png"
    chart(points, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_assistant_ingests_into_and_answers_from_a_chroma_server(chroma_server, embedder, tmp_path):
    host, port = chroma_server
    wanted = {"ConViT: Improving Vision Transformers with Soft Convolutional Inductive Biases",
              "CvT: Introducing Convolutions to Vision Transformers",
              "LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference"}
    real = list(PaperStream([BUNDLED_CORPUS]))
    chosen = [p for p in real if p.title in wanted] + [p for p in real if p.title not in wanted][:3]
    assert len(chosen) == 6
    jsonl = tmp_path / "papers.jsonl"
    jsonl.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in chosen))

    s = Settings(chroma_host=host, chroma_port=port, data_dir=tmp_path / "data")
    report = ingest([jsonl], s, Store(open_client(s), s.embed_model), embedder=embedder)
    assert report.new == 6 and report.chunks_embedded >= 6
    assert not (tmp_path / "data" / "chroma").exists()  # the server holds the index, not an embedded store

    again = ingest([jsonl], s, Store(open_client(s), s.embed_model), embedder=embedder)
    assert again.unchanged == 6 and again.chunks_embedded == 0

    pipe = build_pipeline(s, embedder=embedder)
    answer = pipe.answer("Which papers bridge CNNs and ViTs?")
    assert not answer.abstained
    cited = {c.title for c in answer.citations}
    assert cited and cited <= {p.title for p in chosen}
    assert cited & wanted
