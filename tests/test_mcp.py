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


def _served(root, papers, embedder, **settings):
    """The app with MCP over an index of `papers`, served on loopback: (app, MCP URL)."""
    from rag.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.settings import Settings
    from rag.store import Store, open_client
    from ui.app import build_app, launch_options

    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract, "year": 2021}) + "\n"
                              for p in papers), encoding="utf-8")
    s = Settings(data_dir=root / "data", ui_port=free_port(), **settings)
    ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    app = build_app(s, build_pipeline(s, embedder=embedder), mcp=True)
    app.launch(prevent_thread_lock=True, **launch_options(s, mcp=True))
    return app, app.local_url.rstrip("/") + "/gradio_api/mcp/"


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory, real_papers, embedder):
    app, url = _served(tmp_path_factory.mktemp("mcp"), real_papers[:PICK], embedder)
    yield url
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


# --- the login covers MCP (issue 28, item 1) -------------------------------------------------

USER, PASSWORD = "reader", "correct horse battery"


@pytest.fixture(scope="module")
def locked_mcp_url(tmp_path_factory, real_papers, embedder):
    """The app with RAG_UI_USERNAME / RAG_UI_PASSWORD set, served on loopback with MCP."""
    app, url = _served(tmp_path_factory.mktemp("mcp-locked"), real_papers[:3], embedder,
                       ui_username=USER, ui_password=PASSWORD)
    yield url
    app.close()


async def _client_session(url: str, auth, call):
    import httpx

    async with httpx.AsyncClient(auth=auth, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await call(session)


def _run_as(url, auth, call):
    return asyncio.run(asyncio.wait_for(_client_session(url, auth, call), 120))


def test_mcp_refuses_a_client_without_the_login(locked_mcp_url):
    import httpx

    for auth in (None, (USER, "wrong password")):
        reply = httpx.post(locked_mcp_url, auth=auth, timeout=30, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={"accept": "application/json, text/event-stream"})
        assert reply.status_code == 401, reply.text
        assert "papers" not in reply.text and "abstract" not in reply.text.lower()
        assert reply.headers["www-authenticate"].startswith("Basic")
    with pytest.raises(BaseException) as refused:  # the SDK client gets no session, and says why
        _run_as(locked_mcp_url, None, lambda s: s.list_tools())
    assert any(isinstance(e, httpx.HTTPStatusError) and e.response.status_code == 401
               for e in _leaves(refused.value)), refused.value


def _leaves(err: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or `err` itself."""
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    return [err]


def test_mcp_serves_a_client_with_the_login(locked_mcp_url, real_papers):
    listed = _run_as(locked_mcp_url, (USER, PASSWORD), lambda s: s.list_tools())
    assert {"answer", "retrieve", "stats"} <= {t.name for t in listed.tools}
    found = _run_as(locked_mcp_url, (USER, PASSWORD),
                    lambda s: s.call_tool("retrieve", {"question": real_papers[0].title, "k": 1}))
    assert _json(found)[0]["title"] == real_papers[0].title


def test_mcp_on_a_public_address_needs_a_login(tmp_path):
    from rag.errors import ConfigError
    from rag.settings import Settings
    from ui.app import launch_options

    s = Settings(data_dir=tmp_path / "data", ui_host="0.0.0.0")
    with pytest.raises(ConfigError, match="RAG_UI_USERNAME"):
        launch_options(s, mcp=True)
    launch_options(s, mcp=False)  # the page alone is served with the exposure warning, as before
