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
from bench.scale import Loader, chart, load, run_scale  # noqa: E402
from bench.synth import base_from_settings, synth_papers  # noqa: E402
from rag.corpus import PaperStream  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.models import Filters  # noqa: E402
from rag.pipeline import build_pipeline  # noqa: E402
from rag.settings import BUNDLED_CORPUS, Settings  # noqa: E402
from rag.store import Store, open_client  # noqa: E402

pytestmark = pytest.mark.chroma_server


def test_small_scale_run_on_a_chroma_server(chroma_server, bundled_settings, embedder, tmp_path):
    host, port = chroma_server
    base = base_from_settings(bundled_settings)
    questions = load_questions(QUESTIONS)[:9]
    recorded = []
    result = run_scale(base, [600, 1500], seed=3, batch=300, host=host, port=port, server_pid=None,
                       questions=questions, qvecs=embedder.embed(questions), app_max=600,
                       work=tmp_path / "app", log=lambda _: None, on_point=recorded.append, new_papers=300)

    ceiling = result["server_ceiling"]
    assert ceiling["paper_layout"] == 2 and ceiling["papers_per_s"] > 0
    assert 0 < ceiling["papers_per_s"] < min(ceiling["chunk_records_per_s"], ceiling["paper_records_per_s"])
    points = result["points"]
    assert [p["papers"] for p in points] == [600, 1500]
    for p in points:
        assert p["fewest_hits"] == 100  # every dense query filled its top-100
        assert p["query_ms"]["n"] == len(questions)
        assert p["load_rate"] > 0 and p["loader_rss_mb"] > 0
        assert p["lexical_docs"] == p["papers"] and p["lexical_mb"] > 0
        assert len(p["load_average_at_start"]) == 3
    # The assistant opened what the loader wrote, found papers for every question, and saw the
    # papers another process wrote while it ran, without a restart.
    app = points[0]["app"]
    assert app["answered_share"] == 1.0, app
    assert app["retrieve_ms"]["n"] == 4 and app["answer_ms"]["n"] == 4
    assert app["new_found_before_write"] is False
    assert app["new_papers"]["visible_after_seconds"] is not None and app["new_papers"]["papers_after"] == 900
    assert "app" not in points[1]
    assert recorded and recorded[-1]["points"] == points  # figures are handed out after each size

    s = Settings(chroma_host=host, chroma_port=port, data_dir=tmp_path / "app")
    store = Store(open_client(s), s.embed_model, create=False)
    assert store.counts() == (1500, 1500)
    assert store.sources() == {"synthetic": 1500}
    ids = store.papers.get(limit=5)["ids"]
    assert all(pid.startswith("syn") for pid in ids)
    assert not [c.name for c in store.client.list_collections() if "ceiling" in c.name]  # its store is gone

    png = tmp_path / "scale.png"
    chart(points, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loader_output_opens_and_answers_with_filters(chroma_server, bundled_settings, embedder, tmp_path):
    """What the loader writes is a complete index: build_pipeline opens it, answers from it,
    and the filter fields (year, author, category) work inside retrieval."""
    host, port = chroma_server
    base = base_from_settings(bundled_settings)
    s = Settings(chroma_host=host, chroma_port=port, data_dir=tmp_path / "app")
    loader = Loader(s)
    try:
        assert load(loader, synth_papers(base, 600, seed=4), batch=250) == 600
    finally:
        loader.close()
    papers = {p.paper_id: p for p in synth_papers(base, 600, seed=4, vectors=False)}

    pipe = build_pipeline(s, embedder=embedder)
    assert len(pipe.index) == 600
    answer = pipe.answer("Which papers use vision transformers?")
    assert not answer.abstained and answer.citations
    assert all(c.paper_id in papers for c in answer.citations)

    author = papers["syn4-0000007"].authors.split(", ")[0]
    for filters, ok in [(Filters(year=(2010, 2012)), lambda p: 2010 <= p.year <= 2012),
                        (Filters(category="cs.CV"), lambda p: "cs.CV" in p.categories.split()),
                        (Filters(author=author), lambda p: author in p.authors.split(", "))]:
        got = pipe.retrieve("Which papers learn image representations?", k=20, filters=filters)
        assert got, filters
        assert all(ok(papers[src.paper_id]) for src in got), filters
        stored = pipe.index.papers[got[0].paper_id]
        assert (stored.year, stored.authors, stored.categories) == (
            papers[got[0].paper_id].year, papers[got[0].paper_id].authors, papers[got[0].paper_id].categories)


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
