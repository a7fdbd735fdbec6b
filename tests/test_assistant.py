"""`rag.Assistant` / `rag.open`: one object owns the opened index; the module functions share
one per store and model; ingest, remove and stats through it; closing releases it."""

from __future__ import annotations

import threading

import pytest

import rag
from rag.assistant import PER_CALL, Assistant, opened_by
from rag.errors import StoreError
from rag.settings import Settings


def test_open_answers_retrieves_and_closes(bundled_settings):
    with rag.open(bundled_settings) as a:
        answer = a.answer("Which papers bridge CNNs and ViTs?", max_papers=3)
        assert not answer.abstained and 1 <= len(answer.citations) <= 3
        found = a.retrieve("vision transformers with convolutions", k=4)
        assert len({s.paper_id for s in found}) == 4
        assert a.stats().papers == 555
        index = a.pipeline.index
    assert a.closed
    assert index._worker._shutdown  # its search threads are stopped
    with pytest.raises(StoreError, match="closed"):
        a.answer("What is CvT?")
    a.close()  # idempotent


def test_open_without_an_index_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="rag ingest"):
        rag.open(Settings(data_dir=tmp_path / "none"))


def test_threads_share_one_assistant(bundled_settings, pipeline):
    a = Assistant(bundled_settings, pipeline=pipeline)
    questions = ["What is CvT?", "Which papers study warm-up schedules?", "What does ConViT propose?"] * 2
    serial = {q: a.answer(q).text for q in set(questions)}
    results: dict[int, str] = {}

    def ask(i: int, q: str) -> None:
        results[i] = a.answer(q).text

    threads = [threading.Thread(target=ask, args=(i, q)) for i, q in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(questions))] == [serial[q] for q in questions]
    a.close()
    assert not pipeline.index._worker._shutdown  # a handed-in pipeline is its owner's to close


def test_default_assistant_key_is_everything_it_opens(bundled_settings):
    assert PER_CALL <= set(Settings.model_fields)  # no misspelt field silently left in the key
    first = rag.default_assistant(bundled_settings)
    assert rag.default_assistant(bundled_settings.with_overrides({"max_papers": 2, "answerer": "llm"})) is first
    # What the first call opened must not stick for a call that would open something else.
    for change in ({"embed_threads": 1}, {"embed_device": "cpu"}, {"data_dir": bundled_settings.data_dir / "x"}):
        other = bundled_settings.with_overrides(change)
        assert opened_by(other) != opened_by(bundled_settings)
        assert rag.default_assistant(other) is not first


def test_ingest_remove_and_stats_through_one_assistant(tmp_path, real_papers, write_corpus):
    s = Settings(data_dir=tmp_path / "data")
    corpus = write_corpus(tmp_path / "mine.jsonl", real_papers[:3])
    with Assistant(s) as a:
        report = a.ingest([corpus])
        assert report.distinct == 3
        stats = a.stats()
        assert (stats.papers, stats.sources) == (3, {"mine.jsonl": 3})
        hit = a.retrieve(real_papers[1].title, k=1)[0]
        assert hit.title == real_papers[1].title
        assert a.remove("mine.jsonl") == 3
        assert a.stats().papers == 0
