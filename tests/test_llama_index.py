"""rag.integrations.llama_index inside llama-index's own machinery: its RetrieverQueryEngine
and CitationQueryEngine over `PaperRetriever`, with llama-index's MockLLM (no network)."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import CitationQueryEngine, RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore

from rag.assistant import Assistant
from rag.integrations.llama_index import PaperQueryEngine, PaperRetriever

QUESTION = "Which papers bridge CNNs and ViTs?"


@pytest.fixture(scope="module")
def assistant(bundled_settings, pipeline):
    return Assistant(bundled_settings, pipeline=pipeline)


def test_retriever_returns_one_scored_node_per_paper(assistant):
    retriever = PaperRetriever(assistant, k=5)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("vision transformers with convolutions")
    expected = assistant.retrieve("vision transformers with convolutions", k=5)
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert [n.node.metadata["paper_id"] for n in nodes] == [s.paper_id for s in expected]
    assert len({n.node.node_id for n in nodes}) == 5
    for node, source in zip(nodes, expected):
        meta = node.node.metadata
        assert (meta["title"], meta["year"], meta["score"], node.score) == (
            source.title, source.paper.year, source.score, source.score)
        assert source.paper.abstract in node.node.get_content()
        assert "paper_id" not in node.node.get_content(metadata_mode="llm")  # ids are not the LLM's to read


def test_retriever_query_engine_synthesises_from_the_papers(assistant):
    engine = RetrieverQueryEngine.from_args(PaperRetriever(assistant, k=3), llm=MockLLM(max_tokens=8))
    response = engine.query(QUESTION)
    assert [n.node.metadata["paper_id"] for n in response.source_nodes] == [
        s.paper_id for s in assistant.retrieve(QUESTION, k=3)]
    assert response.response  # MockLLM's text, from llama-index's synthesizer


def test_citation_query_engine_numbers_sources_from_the_papers(assistant):
    engine = CitationQueryEngine(PaperRetriever(assistant, k=3), llm=MockLLM(max_tokens=8))
    response = engine.query(QUESTION)
    assert response.source_nodes
    titles = {s.title for s in assistant.retrieve(QUESTION, k=3)}
    assert all(n.node.get_content().startswith("Source ") for n in response.source_nodes)
    assert {n.node.metadata["title"] for n in response.source_nodes} <= titles


def test_paper_query_engine_carries_the_citations(assistant):
    engine = PaperQueryEngine(assistant, max_papers=3)
    response = engine.query(QUESTION)
    answer = assistant.answer(QUESTION, max_papers=3)
    assert response.response == answer.text
    nodes = response.source_nodes
    assert [n.node.metadata["n"] for n in nodes] == sorted(c.n for c in answer.citations)
    assert [n.node.metadata["paper_id"] for n in nodes] == [c.paper_id for c in sorted(answer.citations,
                                                                                           key=lambda c: c.n)]
    assert all(n.node.get_content() == n.node.metadata["quote"] for n in nodes)
    assert response.metadata["citations"] == answer.to_dict()["citations"]
    assert asyncio.run(engine.aquery(QUESTION)).response == answer.text


def test_paper_query_engine_abstains_without_sources(assistant):
    response = PaperQueryEngine(assistant).query("What is the best recipe for sourdough bread?")
    assert response.metadata["abstained"] and response.source_nodes == []
