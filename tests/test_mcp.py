"""`rag ui --mcp`: the app served with Gradio's MCP server over a small index of real papers,
driven by the `mcp` Python SDK as a real client over streamable HTTP: the tools are listed
with typed parameters and descriptions, `answer` returns its citations as data, `retrieve`
and `stats` answer, a bad parameter is an error result, not a crash."""

from __future__ import annotations

import asyncio
import json

import pytest

from conftest import free_port

pytestmark = pytest.mark.slow

mcp = pytest.importorskip("mcp")
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

PICK = 12  # papers of the bundled corpus in the small index


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory, real_papers, embedder):
    from rag.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.settings import Settings
    from rag.store import Store, open_client
    from ui.app import build_app, launch_options

    root = tmp_path_factory.mktemp("mcp")
    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract, "year": 2021}) + "\n"
                              for p in real_papers[:PICK]), encoding="utf-8")
    s = Settings(data_dir=root / "data", ui_port=free_port())
    ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    app = build_app(s, build_pipeline(s, embedder=embedder), mcp=True)
    app.launch(prevent_thread_lock=True, **launch_options(s, mcp=True))
    yield app.local_url.rstrip("/") + "/gradio_api/mcp/"
    app.close()


async def _session(url: str, calls):
    async with streamable_http_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return [await call(session) for call in calls]


def _run(url, *calls):
    return asyncio.run(asyncio.wait_for(_session(url, calls), 300))


def _json(result) -> object:
    assert not result.isError, result.content
    return json.loads(result.content[0].text)


def test_tools_are_listed_with_typed_parameters(mcp_url):
    (listed,) = _run(mcp_url, lambda s: s.list_tools())
    tools = {t.name: t for t in listed.tools}
    assert {"answer", "retrieve", "stats"} <= set(tools)
    answer = tools["answer"]
    assert "citing the papers used" in answer.description
    props = answer.inputSchema["properties"]
    assert props["question"]["type"] == "string" and props["year_from"]["type"] == "integer"
    assert {"max_papers", "year_to", "source", "author", "category"} <= set(props)
    assert "arXiv category" in props["category"]["description"]
    assert answer.inputSchema.get("required") == ["question"]


def test_answer_returns_citations_as_data(mcp_url, real_papers):
    titles = {p.title for p in real_papers[:PICK]}
    target = real_papers[0]
    question = f"What does the paper {target.title!r} propose?"
    answered, found, stats, cake = _run(
        mcp_url,
        lambda s: s.call_tool("answer", {"question": question}),
        lambda s: s.call_tool("retrieve", {"question": target.title, "k": 3}),
        lambda s: s.call_tool("stats", {}),
        lambda s: s.call_tool("answer", {"question": "What is the best recipe for chocolate cake?"}),
    )
    data = _json(answered)
    assert data["abstained"] is False and data["citations"]
    first = data["citations"][0]
    assert set(first) >= {"n", "paper_id", "title", "quote"}
    assert {c["title"] for c in data["citations"]} <= titles
    assert all(c["quote"] for c in data["citations"])
    assert f"[{first['n']}]" in data["text"]

    papers = _json(found)
    assert len(papers) == 3 and papers[0]["title"] == target.title and papers[0]["abstract"]

    info = _json(stats)
    assert info["papers"] == PICK and info["sources"] == {"small.jsonl": PICK}

    refused = _json(cake)
    assert refused["abstained"] is True and refused["citations"] == []


def test_filters_are_tool_parameters(mcp_url, real_papers):
    target = real_papers[0]
    out_of_range, in_range, other_source = _run(
        mcp_url,
        lambda s: s.call_tool("answer", {"question": f"What does {target.title!r} propose?", "year_to": 2019}),
        lambda s: s.call_tool("retrieve", {"question": target.title, "k": 2, "year_from": 2021, "year_to": 2021}),
        lambda s: s.call_tool("retrieve", {"question": target.title, "source": "other.bib"}),
    )
    data = _json(out_of_range)
    assert data["citations"] == [] and "matches the filter" in data["text"]
    assert _json(in_range)[0]["title"] == target.title
    assert _json(other_source) == []


def test_a_bad_parameter_is_an_error_result(mcp_url):
    (result,) = _run(mcp_url, lambda s: s.call_tool("retrieve", {"question": "transformers", "k": 500}))
    assert result.isError
    assert "k must be a whole number from 1 to 50" in result.content[0].text
