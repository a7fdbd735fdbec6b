"""The chat UI in a real browser: Debian's Chromium driven by Playwright, against the app
served on a free loopback port over the real pipeline and the real bundled index.

Each test opens its own browser context (its own Gradio session). What is checked is what a
user sees: streamed text, citation cards whose titles are corpus titles, the quote
highlighted inside the abstract after clicking a marker or a card, follow-ups answered from
the previous answer's papers, the abstention, errors as chat messages, separate sessions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SCREENSHOT_OUT, free_port

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BOT = '#chat [data-testid="bot"]'
USER = '#chat [data-testid="user"]'
BRIDGE = "Which papers bridge CNNs and ViTs?"
FOLLOW_UP = "Which of those study what ViTs learn?"
CAKE = "What is the best recipe for chocolate cake?"


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def ui_url(pipeline, bundled_settings):
    """The app, launched exactly as `rag ui` launches it, in a background thread."""
    from ui.app import build_app, launch_options

    s = bundled_settings.with_overrides({"ui_port": free_port()})
    app = build_app(s, pipeline)
    app.launch(prevent_thread_lock=True, **launch_options(s))
    yield app.local_url
    app.close()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (make setup-test installs it)"
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    return ctx, page


@pytest.fixture
def page(browser, ui_url):
    ctx, page = _open(browser, ui_url)
    yield page
    ctx.close()


def _send(page, question: str) -> int:
    """Type and send a question; returns how many bot messages there will be when answered."""
    n = page.locator(BOT).count() + 1
    page.fill("#question textarea", question)
    page.click("#ask")
    return n


def _wait_answer(page, n: int):
    """The n-th bot message, once it is final (no streaming cursor left)."""
    page.wait_for_function(
        """n => { const b = document.querySelectorAll('#chat [data-testid="bot"]');
                  return b.length >= n && !b[b.length - 1].querySelector('.typing'); }""",
        arg=n, timeout=120_000)
    return page.locator(BOT).nth(n - 1)


def _ask(page, question: str):
    return _wait_answer(page, _send(page, question))


def _cited(message) -> list[str]:
    """Titles on the message's citation cards, in marker order."""
    return [_norm(t) for t in message.locator("details.cite-card .cite-title").all_inner_texts()]


def _sources(page) -> list[str]:
    """Titles in the sources panel, in rank order."""
    return [_norm(t) for t in page.locator("#sources li.source .src-name").all_inner_texts()]


def _abstracts(pipeline) -> dict[str, list[str]]:
    """Corpus title -> its abstracts (whitespace-normalised); a title can have two versions."""
    out: dict[str, list[str]] = {}
    for p in pipeline.index.papers.values():
        out.setdefault(_norm(p.title), []).append(_norm(p.abstract))
    return out


def _in_abstract(mark, card, abstracts) -> bool:
    text = _norm(mark.inner_text())
    title = _norm(card.locator(".cite-title").inner_text())
    return len(text) > 20 and any(text in a for a in abstracts[title])


def test_streamed_answer_with_cards_and_highlighted_quotes(page, pipeline, tmp_path):
    abstracts = _abstracts(pipeline)
    # Record every intermediate state the chat shows with the streaming cursor.
    page.evaluate("""() => { window.__streamed = [];
        new MutationObserver(() => { const t = document.querySelector('#chat .typing');
            if (t) window.__streamed.push(t.parentElement.innerText); })
        .observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true}); }""")
    answer = _ask(page, BRIDGE)
    assert page.evaluate("window.__streamed.length") > 0, "no streamed preview was shown before the answer"
    assert "Papers in the corpus that match" in answer.inner_text()

    cards = answer.locator("details.cite-card")
    assert cards.count() >= 3
    titles = _cited(answer)
    assert set(titles) <= set(abstracts)  # corpus titles
    # Every cited paper is in the sources panel, marked as cited.
    assert set(titles) <= set(_sources(page))
    assert page.locator("#sources li.source.cited").count() == len(set(titles))

    # A marker opens its card: the abstract with the quote highlighted.
    marker = answer.locator("a.cite-marker").first
    target = marker.get_attribute("href").lstrip("#")
    marker.click()
    card = page.locator(f"#{target}")
    expect(card).to_have_attribute("open", "")
    mark = card.locator(".cite-abstract mark").first
    expect(mark).to_be_visible()
    assert _in_abstract(mark, card, abstracts)

    # Clicking a card itself opens it too.
    last = cards.last
    assert last.get_attribute("open") is None
    last.locator("summary").click()
    expect(last).to_have_attribute("open", "")
    mark = last.locator(".cite-abstract mark").first
    expect(mark).to_be_visible()
    assert _in_abstract(mark, last, abstracts)

    # The screenshot: question, answer, and the first card open with its quote highlighted.
    last.locator("summary").click()
    page.locator(USER).last.evaluate("""u => { const box = u.closest('[role="log"]');
        box.scrollTop += u.getBoundingClientRect().top - box.getBoundingClientRect().top - 12; }""")
    # RAG_SCREENSHOT_OUT=docs/chat.png takes the README's picture; otherwise it stays in tmp_path.
    shot = Path(SCREENSHOT_OUT or tmp_path / "answer.png")
    page.screenshot(path=str(shot))
    print(f"\nscreenshot of a finished answer: {shot}")


def test_follow_up_uses_the_previous_answer_then_clear(page):
    first = _ask(page, BRIDGE)
    first_titles = _cited(first)
    assert len(first_titles) >= 2
    second = _ask(page, FOLLOW_UP)
    second_titles = _cited(second)
    assert second_titles and set(second_titles) <= set(first_titles)
    assert set(_sources(page)) <= set(first_titles)  # the follow-up searched only those papers
    # Cards of both turns are on the page, with distinct anchors.
    assert second.locator("details.cite-card").first.get_attribute("id").startswith("cite-2-")
    assert [_norm(t) for t in page.locator(USER).all_inner_texts()] == [BRIDGE, FOLLOW_UP]

    page.click("#clear")
    expect(page.locator(BOT)).to_have_count(0)
    expect(page.locator("#sources")).to_contain_text("appear here")


def test_question_outside_the_corpus_abstains(page):
    answer = _ask(page, CAKE)
    expect(answer.locator(".abstain-banner")).to_be_visible()
    assert answer.locator("details.cite-card").count() == 0
    assert "nearest, not answering" in answer.inner_text()
    expect(page.locator("#sources .sources.abstained")).to_contain_text("nearest, not answering")
    assert page.locator("#sources li.source").count() >= 1


def test_two_sessions_do_not_share_history(browser, ui_url):
    ctx_a, a = _open(browser, ui_url)
    ctx_b, b = _open(browser, ui_url)
    try:
        # Both asked at once, then each answered in its own chat.
        na, nb = _send(a, BRIDGE), _send(b, CAKE)
        ans_a, ans_b = _wait_answer(a, na), _wait_answer(b, nb)
        assert [_norm(t) for t in a.locator(USER).all_inner_texts()] == [BRIDGE]
        assert [_norm(t) for t in b.locator(USER).all_inner_texts()] == [CAKE]
        assert ans_a.locator("details.cite-card").count() >= 3 and ans_a.locator(".abstain-banner").count() == 0
        assert ans_b.locator(".abstain-banner").count() == 1
        assert a.locator("#sources .sources.abstained").count() == 0
        # B's turn did not become A's previous turn: A's follow-up still resolves to A's papers.
        first_titles = _cited(ans_a)
        follow = _ask(a, FOLLOW_UP)
        assert _cited(follow) and set(_cited(follow)) <= set(first_titles)
        assert b.locator(BOT).count() == 1
    finally:
        ctx_a.close()
        ctx_b.close()


def test_errors_are_chat_messages_not_tracebacks(page):
    n = page.locator(BOT).count() + 1
    page.click("#ask")  # empty question
    error = _wait_answer(page, n).locator(".answer-error")
    expect(error).to_contain_text("the question is empty")
    error = _ask(page, "why " * 600).locator(".answer-error")  # 2,400 characters
    expect(error).to_contain_text("the limit is 2,000")
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and 'File "' not in body
    # The chat still works after errors.
    assert _ask(page, BRIDGE).locator("details.cite-card").count() >= 3


def test_example_question_and_llm_choice_without_endpoint(page, pipeline):
    page.locator("#examples button.example").first.click()
    answer = _wait_answer(page, 1)
    assert [_norm(t) for t in page.locator(USER).all_inner_texts()] == [BRIDGE]
    assert answer.locator("details.cite-card").count() >= 3
    expect(page.locator('#answerer input[value="llm"]')).to_be_disabled()
    expect(page.locator("#answerer")).to_contain_text("no endpoint configured")
    stats = page.locator(".corpus-stats").inner_text()
    assert f"{len(pipeline.index):,} papers" in _norm(stats)
    assert f"{pipeline.index.chunk_count:,} chunks" in _norm(stats)

