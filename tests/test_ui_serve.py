"""The served UI over real HTTP (httpx against the app on a free loopback port), over a
small index of real papers built under tmp_path: request bodies are capped, uploads are
size-limited on loopback and refused when exposed, failed logins are throttled, and `serve`
prints its URL only once the embedding model is loaded (issue 13, items 13 and 15; issue 16)."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import free_port
from rag.embedding import Embedder
from rag.ingest import ingest
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import Store, open_client

pytestmark = pytest.mark.slow  # a small index and a model load

LIMIT = 65_536
UPLOAD_LIMIT = 1_000_000


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, real_papers, embedder):
    root = tmp_path_factory.mktemp("ui-serve")
    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n"
                              for p in real_papers[:8]), encoding="utf-8")
    s = Settings(data_dir=root / "data")
    ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    return s


def _served(settings: Settings, pipeline, **launch):
    from ui.app import build_app, launch_options

    app = build_app(settings, pipeline)
    app.launch(prevent_thread_lock=True, **launch_options(settings, **launch))
    return app


@pytest.fixture(scope="module")
def open_app(small_index, embedder):
    s = small_index.with_overrides({"ui_port": free_port(), "ui_max_request_bytes": LIMIT,
                                    "ui_max_upload_bytes": UPLOAD_LIMIT})
    app = _served(s, build_pipeline(s, embedder=embedder))
    yield app.local_url.rstrip("/")
    app.close()


def test_request_bodies_over_the_limit_are_refused_unread(open_app):
    big = b"x" * (LIMIT + 1)
    r = httpx.post(f"{open_app}/gradio_api/queue/join", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "RAG_UI_MAX_REQUEST_BYTES" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(LIMIT // 1024 + 2):
            yield b"y" * 1024

    r = httpx.post(f"{open_app}/gradio_api/queue/join", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    # A request within the limit still reaches Gradio (here: a malformed join, which it refuses itself).
    assert httpx.post(f"{open_app}/gradio_api/queue/join", json={"data": []}).status_code in (400, 422)
    assert httpx.get(f"{open_app}/gradio_api/info").status_code == 200


def test_uploads_on_loopback_are_size_limited(open_app):
    """Bound to loopback the "Your papers" panel is writable: the upload route alone is open,
    capped at ui_max_upload_bytes (the request-body cap does not apply to it)."""
    r = httpx.post(f"{open_app}/gradio_api/upload", files={"files": ("a.bib", b"% hello\n" * 20_000)})
    assert r.status_code == 200, r.text  # 160 kB: over the request cap, under the upload limit
    big = b"x" * (UPLOAD_LIMIT + 70_000)
    r = httpx.post(f"{open_app}/gradio_api/upload", content=big, headers={"content-type": "multipart/form-data"})
    assert r.status_code == 413 and "RAG_UI_MAX_UPLOAD_BYTES" in r.json()["detail"]
    assert httpx.post(f"{open_app}/gradio_api/process_recording", content=b"{}").status_code == 403


def test_uploads_are_refused_when_exposed(small_index, embedder):
    """Reachable from other machines without a password: no uploads at all, nothing stored."""
    s = small_index.with_overrides({"ui_port": free_port(), "ui_host": "0.0.0.0"})
    app = _served(s, build_pipeline(s, embedder=embedder))
    try:
        url = f"http://127.0.0.1:{app.server_port}"
        r = httpx.post(f"{url}/gradio_api/upload", files={"files": ("a.txt", b"hello " * 1000)})
        assert r.status_code == 403 and "no file uploads" in r.json()["detail"]
        assert httpx.post(f"{url}/gradio_api/process_recording", content=b"{}").status_code == 403
        assert "Adding and removing papers is off" in httpx.get(f"{url}/config").text
    finally:
        app.close()


def test_failed_logins_are_throttled_per_client(small_index, embedder):
    from ui.guard import LoginThrottle

    s = small_index.with_overrides({"ui_port": free_port(), "ui_username": "reader", "ui_password": "s3cret"})
    # A first wait of ten minutes: the 429 below cannot depend on how fast this machine is.
    throttle = LoginThrottle(free=3, base=600.0, cap=600.0)
    app = _served(s, build_pipeline(s, embedder=embedder), throttle=throttle)
    url = app.local_url.rstrip("/")
    try:
        wrong = {"username": "reader", "password": "guess"}
        assert [httpx.post(f"{url}/login", data=wrong).status_code for _ in range(4)] == [400] * 4
        r = httpx.post(f"{url}/login", data={"username": "reader", "password": "s3cret"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 500  # even the right password waits
        assert "too many failed logins" in r.json()["detail"]
        throttle.succeeded("127.0.0.1")  # the wait is over (as if ten minutes had passed)
        assert httpx.post(f"{url}/login", data={"username": "reader", "password": "s3cret"}).status_code == 200
    finally:
        app.close()


def test_url_is_printed_once_the_model_is_loaded(small_index, capsys):
    from ui.app import serve

    s = small_index.with_overrides({"ui_port": free_port()})
    fresh = Embedder(s.embed_model, threads=1)  # not loaded yet, unlike the session's
    pipeline = build_pipeline(s, embedder=fresh)
    assert "model" not in fresh.__dict__
    app = serve(s, pipeline)
    try:
        assert "model" in fresh.__dict__  # loaded (a cached_property) before serve returned
        assert f"Chat UI running at http://127.0.0.1:{s.ui_port}" in capsys.readouterr().out
    finally:
        app.close()


# --- the /ask API's inputs (issue 28, item 9) -------------------------------------------------

def _call_ask(url: str, data: list) -> tuple[str, object]:
    """POST /gradio_api/call/ask as a raw HTTP client, then read its result: (event, data)."""
    r = httpx.post(f"{url}/gradio_api/call/ask", json={"data": data}, timeout=60)
    assert r.status_code == 200, r.text
    stream = httpx.get(f"{url}/gradio_api/call/ask/{r.json()['event_id']}", timeout=300).text
    events = [line.removeprefix("event: ").strip() for line in stream.splitlines() if line.startswith("event:")]
    payloads = [line.removeprefix("data:").strip() for line in stream.splitlines() if line.startswith("data:")]
    return events[-1], json.loads(payloads[-1])


def test_ask_with_too_few_inputs_says_what_it_needs(open_app):
    for data in ([], ["What is CvT?", []]):
        event, payload = _call_ask(open_app, data)
        message = payload["error"]
        assert event == "error" and isinstance(message, str), payload
        assert "8 inputs" in message and "question, history" in message and "\n" not in message


@pytest.mark.parametrize("question", ["tell me more", "What did they find?", "Which of those use convolutions?"])
@pytest.mark.parametrize("citations", [
    [{"paper_id": 5}], [{"n": "one", "paper_id": None}], [{"unknown": "key"}], ["no-such-paper-id"],
    [{"n": 1, "paper_id": "no-such-paper-id", "title": 7}], [[1, 2]], [None],
], ids=["id-number", "wrong-types", "unknown-key", "unknown-id", "unknown-id-dict", "list", "null"])
def test_ask_with_malformed_history_citations_answers(open_app, question, citations):
    """Citations that are not {"n": int, "paper_id": a paper of the index, "title": str} are
    ignored: the follow-up is answered as if the earlier answer had not carried them."""
    history = [{"role": "user", "content": "Which papers are about transformers?"},
               {"role": "assistant", "content": "Several [1]. More [2].", "citations": citations}]
    event, result = _call_ask(open_app, [question, history, "auto", 0, "", "", "", ""])
    assert event == "complete", result
    assert isinstance(result[0]["text"], str) and result[0]["text"]
