"""Metadata filters (year, source, author, category) applied inside both retrievers, checked
against the metadata itself, on an embedded store and on a Chroma server."""

from __future__ import annotations

import pytest

import rag
from rag.ingest import ingest
from rag.lexical import chroma_where
from rag.models import Filters
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import Store, open_client

SURNAMES = ["Doe", "Smith", "Lee"]


def _extra(papers) -> dict:
    return {p.title: {"year": 2015 + i % 10, "authors": f"Ann {SURNAMES[i % 3]}, Bob Brown{i}",
                      "categories": "cs.CV cs.LG" if i % 2 else "cs.CL", "id": f"p{i}"}
            for i, p in enumerate(papers)}


@pytest.fixture(params=["embedded", "server"])
def filtered(request, tmp_path, embedder, real_papers, write_corpus):
    """A pipeline over 30 papers in two files with years, authors and categories."""
    if request.param == "server":
        host, port = request.getfixturevalue("chroma_server")
        s = Settings(data_dir=tmp_path / "data", chroma_host=host, chroma_port=port)
    else:
        s = Settings(data_dir=tmp_path / "data")
    papers = real_papers[100:130]
    extra = _extra(papers)
    a = write_corpus(tmp_path / "a.jsonl", papers[:18], extra)
    b = write_corpus(tmp_path / "b.jsonl", papers[18:], extra)
    ingest([a, b], s, Store(open_client(s), s.embed_model), embedder=embedder)
    pipe = build_pipeline(s, embedder=embedder)
    return s, pipe


def _matching(pipe, f: Filters) -> set[str]:
    out = set()
    for pid in pipe.index.papers:
        p = pipe.index.paper(pid)
        if f.year and not (f.year[0] <= p.year <= f.year[1]):
            continue
        if f.source and p.source != f.source:
            continue
        if f.author and f.author.casefold() not in [a.split()[-1].casefold() for a in p.authors.split(", ")]:
            continue
        if f.category and f.category not in p.categories.split():
            continue
        out.add(pid)
    return out


FILTERS = [Filters(year=(2018, 2020)), Filters(source="b.jsonl"), Filters(author="doe"),
           Filters(category="cs.CL"), Filters(year=(2016, 2022), category="cs.CV", author="Smith")]


@pytest.mark.parametrize("f", FILTERS, ids=lambda f: f.describe())
def test_filters_match_the_metadata_in_both_retrievers(filtered, f):
    s, pipe = filtered
    matching = _matching(pipe, f)
    assert 0 < len(matching) < 30
    question = "learning representations for images and language with neural networks"
    dense = s.with_overrides({"retrieval_mode": "dense"})
    # Dense: every matching paper is a candidate (30 papers < 100 candidate chunks), nothing else.
    assert {src.paper_id for src in pipe.retrieve(question, k=100, settings=dense, filters=f)} == matching
    lexical = s.with_overrides({"retrieval_mode": "bm25"})
    bm25 = {src.paper_id for src in pipe.retrieve(question, k=100, settings=lexical, filters=f)}
    assert bm25 and bm25 <= matching
    hybrid = pipe.retrieve(question, k=100, filters=f)
    assert {src.paper_id for src in hybrid} == matching
    # Counted inside the lexical index as Chroma counts the chunks' metadata.
    assert pipe.index.lexical_index.count_matching(f) == len(pipe.index.store.chunks.get(where=chroma_where(f),
                                                                                         include=[])["ids"])
    # A matching paper asked for by its title comes first; the filter did not cut it after ranking.
    target = pipe.index.paper(sorted(matching)[0])
    assert pipe.retrieve(target.title, k=3, filters=f)[0].paper_id == target.paper_id


def test_a_filter_that_matches_nothing_says_so(filtered):
    s, pipe = filtered
    f = Filters(year=(1990, 1995), source="a.jsonl")
    got = pipe.answer("What do vision transformers learn?", filters=f)
    assert got.abstained and got.text == "No paper in the index matches the filter (year 1990-1995, source a.jsonl)."
    assert not got.citations
    assert pipe.retrieve("vision transformers", filters=Filters(category="q-bio.XX")) == []


def test_public_api_keyword_filters(filtered):
    s, pipe = filtered
    got = rag.retrieve("neural networks", k=50, settings=s, year="2018-2020", category="cs.CL")
    assert got and all(2018 <= src.paper.year <= 2020 and "cs.CL" in src.paper.categories for src in got)
    assert rag.answer("neural networks", settings=s, author="nobody-at-all").abstained
    with pytest.raises(ValueError):
        rag.retrieve("x y z", settings=s, filters=Filters(year=(2018, 2019)), year=2018)
