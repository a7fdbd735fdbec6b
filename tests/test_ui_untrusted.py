"""Corpus text is data, in a real browser: a tiny corpus whose titles and abstracts carry
Markdown images and links, HTML tags, scripts, a bare URL, reference markers and a
right-to-left override is really ingested under tmp_path and served by the real app.

A local HTTP server plays the tracking host the corpus points at. After a question that
cites those papers, with every card opened: no request went to any host but the app's, the
tracking server got no hit, no link or image points at it, no script ran, the page holds the
markup as literal characters, every corpus string the UI places is isolated in a <bdi>, and
each card's quote reads as the answer text shows it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from conftest import free_port
from rag.ingest import ingest
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import Store, open_client
from test_ui_browser import _ask, _open, browser  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # and a small index

QUESTION = "Which papers study vision transformers?"
RLO = "\u202e"


def _corpus(host: str) -> list[dict]:
    return [
        {"title": f"Tracking pixels in vision transformers ![x]({host}/pixel.png)",
         "abstract": f"We study vision transformers for image classification ![y]({host}/pixel2.png) on ImageNet. "
                     f"Vision transformers ![z]({host}/pixel3.png) learn image features from patches."},
        {"title": f"Vision transformers for dataset release [Download the full dataset here]({host}/download)",
         "abstract": f"[Download the full dataset here]({host}/download) vision transformers classify images with "
                     f"attention. Our vision transformer [Download]({host}/d2) reaches high accuracy."},
        {"title": f"Vision transformers with images <img src={host}/img.png>",
         "abstract": f'Vision transformers <img src="{host}/img2.png" onerror="window.__pwned=1"> classify images '
                     f"well. Patch embeddings <img src={host}/img3.png> help vision transformers."},
        {"title": "<script>window.__pwned=2</script> Vision transformers for segmentation",
         "abstract": f"Vision transformers <script>fetch('{host}/script')</script> segment images into regions. "
                     "Segmentation with vision transformers <script>window.__pwned=3</script> is accurate."},
        {"title": f"invoice{RLO}gpj.exe vision transformers for detection",
         "abstract": f"Vision transformers detect objects, see {host}/bare for details [2] [3]. Detection with "
                     f"vision transformers {RLO}is reversed works [4]."},
        {"title": "Convolutional networks for speech recognition",
         "abstract": "We train convolutional networks on audio spectrograms for speech recognition."},
    ]


@pytest.fixture
def tracker():
    """A local HTTP server standing for the tracking host; records every path asked for."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


@pytest.fixture
def hostile_app(tmp_path, tracker, embedder):
    from ui.app import build_app, launch_options

    host, _ = tracker
    corpus = tmp_path / "hostile.jsonl"
    corpus.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in _corpus(host)), encoding="utf-8")
    s = Settings(data_dir=tmp_path / "data", ui_port=free_port())
    report = ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    assert report.new == 6, report.summary()
    app = build_app(s, build_pipeline(s, embedder=embedder))
    app.launch(prevent_thread_lock=True, **launch_options(s))
    yield app.local_url
    app.close()


def test_corpus_markup_is_shown_as_text_and_fetches_nothing(browser, hostile_app, tracker):  # noqa: F811
    host, hits = tracker
    ctx, page = _open(browser, hostile_app)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        answer = _ask(page, QUESTION)
        cards = answer.locator("details.cite-card")
        assert cards.count() >= 3, answer.inner_text()
        for i in range(cards.count()):  # open each card: its abstract is rendered too
            cards.nth(i).locator("summary").click()
        page.wait_for_timeout(500)  # lets any image the page holds start loading (nothing is timed)

        app_netloc = urlsplit(hostile_app).netloc
        foreign = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                   and urlsplit(u).netloc != app_netloc]
        assert foreign == []
        assert hits == []
        tracking = urlsplit(host).netloc
        links = page.locator(f'a[href*="{tracking}"]').evaluate_all(
            "els => els.map(e => e.outerHTML + ' in ' + e.parentElement.outerHTML.slice(0, 300))")
        assert links == []
        assert page.locator(f'img[src*="{tracking}"]').count() == 0
        assert page.evaluate("typeof window.__pwned") == "undefined"

        body = page.locator("body").inner_text()
        for literal in (f"![x]({host}/pixel.png)", f"[Download the full dataset here]({host}/download)",
                        f"<img src={host}/img.png>", f'<img src="{host}/img2.png" onerror="window.__pwned=1">',
                        f"{host}/bare"):
            assert literal in body, literal
        assert "\\[" not in body and "&lt;" not in body and "\\<" not in body  # escaped once, not twice

        # Isolation: every title the UI places sits in a <bdi>; no override is left to run on.
        for selector in ("details.cite-card .cite-title", "#sources .src-name"):
            titles = page.locator(selector)
            assert titles.count() >= 3
            for i in range(titles.count()):
                assert titles.nth(i).locator("bdi").count() == 1
        # The override is dropped at ingest (rag.corpus) or, if one gets through, shown as its code.
        assert RLO not in body
        assert "invoicegpj.exe" in body or "invoice⟨U+202E⟩gpj.exe" in body

        # Each card's quote reads as the text shows it (a reference "[2]" shows as "(2)" in
        # both) and is found, highlighted, in its abstract.
        text = " ".join(answer.inner_text().split())
        for i in range(cards.count()):
            quote = " ".join(cards.nth(i).locator(".cite-quote").inner_text().split()).strip("“”")
            assert quote in text, quote
            assert "[2]" not in quote
            assert cards.nth(i).locator(".cite-missing").count() == 0, quote
            assert cards.nth(i).locator(".cite-abstract mark").count() >= 1
    finally:
        ctx.close()
