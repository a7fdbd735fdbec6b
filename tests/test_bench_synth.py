"""The synthetic corpus generator of the scale benchmark: deterministic, made of real
sentences, streamed, and readable by the assistant's own ingest."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

# `bench` is not an installed package (pyproject's packages.find lists rag, ui, eval): make the
# project root importable, as `python -m bench.run` does from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synth import base_from_settings, main, synth_papers, write_jsonl  # noqa: E402
from rag.corpus import PaperStream  # noqa: E402
from rag.settings import BUNDLED_CORPUS  # noqa: E402


@pytest.fixture(scope="module")
def base(bundled_settings):
    return base_from_settings(bundled_settings)


@pytest.fixture(scope="module")
def real_papers():
    return list(PaperStream([BUNDLED_CORPUS]))


def _snapshot(base, n, seed):
    return [(p.paper_id, p.title, p.abstract, p.vector.tobytes()) for p in synth_papers(base, n, seed)]


def test_base_covers_the_real_corpus(base, real_papers):
    assert len(base.titles) == len(real_papers) == 555
    assert base.vectors.shape == (len(base.sentences), 384)
    assert np.allclose(np.linalg.norm(base.vectors, axis=1), 1.0, atol=1e-3)


def test_same_seed_gives_identical_papers_and_vectors(base):
    assert _snapshot(base, 300, seed=7) == _snapshot(base, 300, seed=7)


def test_different_seeds_give_different_papers(base):
    a, b = _snapshot(base, 300, seed=1), _snapshot(base, 300, seed=2)
    differing = sum(x[2] != y[2] for x, y in zip(a, b))
    assert differing > 290  # a few coincidences are possible, not many
    assert [x[0] for x in a] != [y[0] for y in b]  # ids carry the seed


def test_every_sentence_and_title_piece_is_real(base, real_papers):
    abstracts = [p.abstract for p in real_papers]
    titles = {p.title for p in real_papers}
    heads = {t.partition(":")[0].strip() for t in titles if ":" in t}
    tails = {t.partition(":")[2].strip() for t in titles if ":" in t}
    for paper in synth_papers(base, 400, seed=3):
        assert 1 <= len(paper.sentences) <= 7
        assert paper.abstract == " ".join(paper.sentences)
        for sentence in paper.sentences:
            assert any(sentence in abstract for abstract in abstracts), sentence
        if paper.title not in titles:
            head, _, tail = paper.title.partition(": ")
            assert head in heads and tail in tails, paper.title


def test_vectors_are_unit_length_and_close_to_their_sources(base):
    index = {s: i for i, s in enumerate(base.sentences)}
    for paper in synth_papers(base, 200, seed=4):
        assert paper.vector.dtype == np.float32
        assert abs(float(np.linalg.norm(paper.vector)) - 1.0) < 1e-5
        mix = base.vectors[[index[s] for s in paper.sentences]].mean(axis=0)
        assert float(paper.vector @ (mix / np.linalg.norm(mix))) > 0.8  # the noise does not drown the mix


def test_texts_do_not_depend_on_whether_vectors_are_made(base):
    with_vectors = [(p.title, p.abstract) for p in synth_papers(base, 100, seed=5)]
    without = [(p.title, p.abstract, p.vector) for p in synth_papers(base, 100, seed=5, vectors=False)]
    assert with_vectors == [(t, a) for t, a, _ in without]
    assert all(v is None for _, _, v in without)


def test_papers_are_streamed_not_listed(base):
    papers = synth_papers(base, 10**12, seed=1)  # a list of this size could never be built
    assert isinstance(papers, types.GeneratorType)
    first = next(papers)
    assert first.paper_id == "syn1-0000000"
    assert next(papers).paper_id == "syn1-0000001"


def test_cli_writes_jsonl_the_ingest_reads(bundled_settings, tmp_path):
    out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (out_a, out_b):
        assert main(["--n", "50", "--seed", "9", "--out", str(out), "--data-dir", str(bundled_settings.data_dir)]) == 0
    assert out_a.read_bytes() == out_b.read_bytes()
    records = [json.loads(line) for line in out_a.read_text().splitlines()]
    assert len(records) == 50 and set(records[0]) == {"id", "title", "abstract", "authors", "year", "categories"}
    stream = PaperStream([out_a])
    papers = list(stream)
    assert not stream.skipped
    assert len(papers) == 50


def test_jsonl_with_vectors(base, tmp_path):
    path = tmp_path / "v.jsonl"
    with path.open("w") as fh:
        assert write_jsonl(synth_papers(base, 3, seed=1), fh, with_vectors=True) == 3
    first = json.loads(path.read_text().splitlines()[0])
    assert len(first["embedding"]) == 384


def test_filter_fields_are_deterministic_and_plausible(base):
    from bench.synth import CATEGORIES

    a = [(p.year, p.authors, p.categories) for p in synth_papers(base, 300, seed=6)]
    assert a == [(p.year, p.authors, p.categories) for p in synth_papers(base, 300, seed=6, vectors=False)]
    years = {y for y, _, _ in a}
    assert years <= set(range(2007, 2025)) and len(years) > 10
    for _, authors, categories in a:
        names = authors.split(", ")
        assert 2 <= len(names) <= 3 and len(set(names)) == len(names)
        cats = categories.split()
        assert 1 <= len(cats) <= 2 and set(cats) <= set(CATEGORIES)
    record = next(synth_papers(base, 1, seed=6)).record()
    assert (record.year, record.authors, record.categories, record.source) == (*a[0], "synthetic")
