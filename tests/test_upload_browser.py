"""Uploading papers in the chat UI, in a real browser (Debian's Chromium through Playwright)
against the app on a loopback port over a small real index built under tmp_path.

What a user sees: a .bib of three papers the index does not have is uploaded, the progress
shows while it is read and embedded, the summary says "3 new"; a question only those papers
answer is answered from them in the same session (no restart), with their cards; the answer
downloads as Markdown and its cited papers as BibTeX that parses back. A broken file is
refused with the reason and changes nothing. The source's Remove button takes its papers out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import free_port
from test_ui_browser import _ask, _cited, _norm, browser  # noqa: F401 (the browser fixture)
from test_upload import BEE_TITLES, BEES, UPLOADS

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

SMALL = 8


@pytest.fixture(scope="module")
def upload_app(tmp_path_factory, real_papers, embedder):
    from rag.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.settings import Settings
    from rag.store import Store, open_client
    from ui.app import build_app, launch_options

    root = tmp_path_factory.mktemp("upload-ui")
    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n"
                              for p in real_papers[:SMALL]), encoding="utf-8")
    s = Settings(data_dir=root / "data", ui_port=free_port())
    ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    app = build_app(s, build_pipeline(s, embedder=embedder))
    app.launch(prevent_thread_lock=True, **launch_options(s))
    yield app.local_url, s
    app.close()


def _papers_shown(page) -> int:
    text = _norm(page.locator(".corpus-stats").inner_text())
    return int(text.split(" papers")[0].replace(",", ""))


def _upload(page, path: Path, expected: str):
    page.evaluate("""() => { window.__progress = [];
        new MutationObserver(() => { for (const el of document.querySelectorAll(
              '.progress-text, .progress-level, .eta-bar, .meta-text, .meta-text-center'))
            window.__progress.push(el.innerText || el.className); })
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    page.set_input_files("#upload input[type=file]", str(path))
    expect(page.locator("#upload-summary")).to_contain_text(expected, timeout=180_000)


def test_upload_ask_download_refuse_remove(browser, upload_app, tmp_path):  # noqa: F811
    url, settings = upload_app
    ctx = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    page = ctx.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=60_000)
        assert _papers_shown(page) == SMALL
        expect(page.locator("#library")).to_contain_text("small.jsonl")
        # Before: nothing in the index is about bees.
        before = _ask(page, BEES)
        assert before.locator(".abstain-banner").count() == 1

        _upload(page, UPLOADS / "beehives.bib", "Added beehives.bib: 3 new, 0 updated, 0 unchanged, 0 skipped")
        shown = page.evaluate("window.__progress")
        assert shown, "no progress was shown while ingesting"
        assert any("/3 paper" in t for t in shown), shown  # the ingest's own count (Gradio tracks its tqdm bar)
        expect(page.locator("#upload-summary")).to_contain_text("files 1, papers read 3")
        expect(page.locator(".corpus-stats")).to_contain_text(f"{SMALL + 3} papers")
        row = page.locator(".source-row", has_text="beehives.bib")
        expect(row).to_contain_text("3 papers")
        assert (settings.data_dir / "uploads" / "beehives.bib").is_file()

        # Same session, no restart: the new papers answer, with their cards.
        answer = _ask(page, BEES)
        assert answer.locator(".abstain-banner").count() == 0
        cited = set(_cited(answer))
        assert cited and cited <= BEE_TITLES | {"Counting Varroa Mites on Honeybee Brood Frames from Smartphone Photos"}
        assert cited & BEE_TITLES
        card = answer.locator("details.cite-card").first
        card.locator("summary").click()
        expect(card.locator(".cite-abstract mark").first).to_be_visible()

        # Downloads: the answer as Markdown, the cited papers as BibTeX that parses back.
        import bibtexparser

        with page.expect_download() as got:
            page.click("#download-bib")
        bib = Path(got.value.path()).read_text(encoding="utf-8")
        library = bibtexparser.parse_string(bib)
        assert not library.failed_blocks
        assert {e["title"] for e in library.entries} == cited
        with page.expect_download() as got:
            page.click("#download-md")
        md = Path(got.value.path()).read_text(encoding="utf-8")
        assert md.startswith("## " + BEES) and "### References" in md

        # A filter in the settings panel: no paper of those years, and the answer says so.
        page.fill("#filter-year textarea, #filter-year input", "1990-1995")
        filtered = _ask(page, BEES)
        expect(filtered).to_contain_text("matches the filter (year 1990-1995)")
        assert filtered.locator("details.cite-card").count() == 0
        page.fill("#filter-year textarea, #filter-year input", "")

        # A broken file: refused with the reason, nothing indexed or kept.
        _upload(page, UPLOADS / "broken.bib.gz", "Refused")
        expect(page.locator("#upload-summary")).to_contain_text("not a gzip file")
        expect(page.locator("#upload-summary")).to_contain_text("nothing was indexed")
        assert _papers_shown(page) == SMALL + 3
        assert page.locator(".source-row").count() == 2
        assert not (settings.data_dir / "uploads" / "broken.bib.gz").exists()

        # Remove the source: its papers go, the question abstains again.
        row.locator("button.remove-source").click()
        expect(page.locator("#upload-summary")).to_contain_text("Removed beehives.bib: 3 papers")
        expect(page.locator(".corpus-stats")).to_contain_text(f"{SMALL} papers")
        expect(page.locator(".source-row", has_text="beehives.bib")).to_have_count(0)
        assert not (settings.data_dir / "uploads" / "beehives.bib").exists()
        assert _ask(page, BEES).locator(".abstain-banner").count() == 1
        shot = tmp_path / "upload.png"
        page.screenshot(path=str(shot))
        print(f"\nscreenshot: {shot}")
    finally:
        ctx.close()
