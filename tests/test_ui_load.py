"""The UI's headless API (`/ask`) under concurrent load, over loopback, with real
`gradio_client` clients against the app served on the real pipeline.

The reference for each question is the answer it gets when asked alone; under load, with
eight clients asking at once, every answer must be identical to it and nothing may fail.
Also: API errors arrive as messages, and a configured login is enforced.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import free_port

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError, AuthenticationError  # noqa: E402

CLIENTS = 8
BRIDGE = "Which papers bridge CNNs and ViTs?"
QUESTIONS = [
    BRIDGE,
    "What accuracy does CvT reach on ImageNet?",
    "How does MambaOut compare Mamba with CNNs?",
    "Which papers study self-supervised representation learning?",
    "What is the best recipe for chocolate cake?",
]
FOLLOW_UP = "Which of those study what ViTs learn?"


def _serve(settings, pipeline):
    from ui.app import build_app, launch_options

    s = settings.with_overrides({"ui_port": free_port()})
    app = build_app(s, pipeline)
    app.launch(prevent_thread_lock=True, **launch_options(s))
    return app


@pytest.fixture(scope="module")
def ui_url(pipeline, bundled_settings):
    app = _serve(bundled_settings, pipeline)
    yield app.local_url
    app.close()


def _client(url, **kw):
    return gradio_client.Client(url, verbose=False, download_files=False, analytics_enabled=False, **kw)


def _key(result: dict) -> tuple:
    """What must not change between a lone and a concurrent ask."""
    return (result["text"], result["abstained"], tuple(c["title"] for c in result["citations"]),
            tuple(s["title"] for s in result["sources"]), result["markdown"])


def test_concurrent_clients_get_the_answers_asked_alone(ui_url):
    alone = _client(ui_url)
    try:
        expected = {q: alone.predict(q, [], api_name="/ask") for q in QUESTIONS}
        # The answer's own assistant turn, its citations as data (docs/operations.md, "Headless API").
        history = [{"role": "user", "content": BRIDGE}, expected[BRIDGE]["message"]]
        expected[FOLLOW_UP] = alone.predict(FOLLOW_UP, history, api_name="/ask")
    finally:
        alone.close()
    assert expected[BRIDGE]["citations"] and expected[QUESTIONS[-1]]["abstained"]
    # The follow-up resolved against the history it was sent, not against anything server-side.
    first = {c["title"] for c in expected[BRIDGE]["citations"]}
    assert expected[FOLLOW_UP]["citations"] and {c["title"] for c in expected[FOLLOW_UP]["citations"]} <= first

    def run(i: int) -> list[tuple[str, dict | Exception]]:
        client = _client(ui_url)
        out = []
        try:
            order = QUESTIONS[i % len(QUESTIONS):] + QUESTIONS[:i % len(QUESTIONS)] + [FOLLOW_UP]
            for q in order:
                try:
                    out.append((q, client.predict(q, history if q == FOLLOW_UP else [], api_name="/ask")))
                except Exception as err:  # collected: the assertion below reports every one
                    out.append((q, err))
        finally:
            client.close()
        return out

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for batch in pool.map(run, range(CLIENTS)) for r in batch]
    errors = [(q, repr(r)) for q, r in results if isinstance(r, Exception)]
    assert errors == []
    assert len(results) == CLIENTS * (len(QUESTIONS) + 1)
    different = [q for q, r in results if _key(r) != _key(expected[q])]
    assert different == []


def test_api_errors_are_messages(ui_url):
    client = _client(ui_url)
    try:
        with pytest.raises(AppError, match="the question is empty"):
            client.predict("   ", [], api_name="/ask")
        with pytest.raises(AppError, match="limit is 2,000"):
            client.predict("why " * 600, [], api_name="/ask")
        ok = client.predict(BRIDGE, [], "off", 2, api_name="/ask")  # follow_up, max_papers
        assert 1 <= len(ok["citations"]) <= 2
        # Filters (year, source, author, category): none of the bundled papers is from the 1990s.
        none = client.predict(BRIDGE, [], "auto", 0, "1990-1995", api_name="/ask")
        assert none["citations"] == [] and "matches the filter (year 1990-1995)" in none["text"]
        with pytest.raises(AppError, match="year must look like 2021"):
            client.predict(BRIDGE, [], "auto", 0, "soon", api_name="/ask")
        # Wrong types get their reason, not "internal error".
        for args, reason in [((BRIDGE, [], [1], 0), "follow_up must be one of"),
                             ((BRIDGE, [], "auto", "abc"), "max_papers must be a whole number"),
                             ((BRIDGE, [], "auto", 500), "invalid setting max_papers 500"),
                             ((BRIDGE, "not a list", "auto", 0), "history must be a list"),
                             ((BRIDGE, [{"role": "user"}], "auto", 0), "history item 1"),
                             (([BRIDGE], [], "auto", 0), "the question must be text")]:
            with pytest.raises(AppError, match=reason):
                client.predict(*args, api_name="/ask")
        # NaN: gradio_client will not send it, any other JSON client may (Python's json does).
        call = httpx.post(f"{ui_url.rstrip('/')}/gradio_api/call/ask",
                          content=json.dumps({"data": [BRIDGE, [], "auto", float("nan"), "", "", "", ""]}),
                          headers={"content-type": "application/json"})
        events = httpx.get(f"{ui_url.rstrip('/')}/gradio_api/call/ask/{call.json()['event_id']}").text
        assert "event: error" in events and "max_papers must be a whole number" in events, events
    finally:
        client.close()


def test_login_is_required_when_configured(pipeline, bundled_settings):
    locked = bundled_settings.with_overrides({"ui_username": "reader", "ui_password": "s3cret"})
    app = _serve(locked, pipeline)
    try:
        with pytest.raises(AuthenticationError):
            _client(app.local_url)
        with pytest.raises(ValueError, match="Could not login"):  # gradio answers 400 here, not 401
            _client(app.local_url, auth=("reader", "wrong"))
        client = _client(app.local_url, auth=("reader", "s3cret"))
        try:
            assert client.predict(BRIDGE, [], api_name="/ask")["citations"]
        finally:
            client.close()
    finally:
        app.close()
