"""The UI's pure rendering (ui/render.py) and launch helpers (ui/app.py), without a server.

Markup is checked by parsing it with the standard library's HTML parser, not by string
matching alone: a marker must point at an element id that exists, a <mark> must sit inside
the abstract and hold the quote, corpus text must never become a tag.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from pydantic import ValidationError

from rag.models import Answer, Citation, Paper, Source
from rag.settings import Settings
from rag.text import escape_md
from ui import render


class Tree(HTMLParser):
    """Tags (with attributes) and the text inside each `<mark>`, in document order."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.marks: list[str] = []
        self._in_mark = 0
        self.text = ""
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._in_mark += 1
            self.marks.append("")

    def handle_endtag(self, tag):
        if tag == "mark":
            self._in_mark -= 1

    def handle_data(self, data):
        self.text += data
        if self._in_mark:
            self.marks[-1] += data

    def find(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


ABSTRACT = ("Vision transformers lack inductive biases. We propose CvT, which adds convolutions to ViT. "
            "CvT reaches 87.7% top-1 accuracy on ImageNet. Code is released.")
CVT = Paper("p-cvt", "CvT: Introducing Convolutions to Vision Transformers", ABSTRACT, authors="A, B, C, D", year=2021)
EVIL = Paper("p-evil", "<script>alert('t')</script> Attacks", "We show <img src=x onerror=alert(1)> works. Done.")


def _answer(**kw) -> Answer:
    cites = [Citation(1, CVT.paper_id, CVT.title, "We propose CvT, which adds convolutions to ViT."),
             Citation(2, EVIL.paper_id, EVIL.title, "We show <img src=x onerror=alert(1)> works.")]
    sources = [Source(CVT, 1.0, dense=0.71, bm25=12.5), Source(EVIL, 0.62, dense=0.55, bm25=None)]
    base = dict(question="q", text="CvT adds convolutions [1]. Attacks exist [2]. See also [7].",
                citations=cites, sources=sources)
    return Answer(**{**base, **kw})


def test_esc_makes_markup_and_template_syntax_inert():
    out = render.esc("<script>x</script> ${a} {{b}} $$c$$ `d`")
    assert "<" not in out and "$" not in out and "{" not in out and "`" not in out
    assert Tree(out).text == "<script>x</script> ${a} {{b}} $$c$$ `d`"  # the reader still sees the text


def test_quote_spans_whole_quote_and_sentences_apart():
    text = "A b. C d. E f."
    assert render.quote_spans(text, "C d.") == [(5, 9)]
    assert render.quote_spans(text, "A b. E f.") == [(0, 4), (10, 14)]  # two sentences, apart
    assert render.quote_spans(text, "A b. C d.") == [(0, 9)]  # adjacent: one span
    assert render.quote_spans(text, "Z z.") == []


def test_quote_spans_ignores_whitespace_then_case():
    text = "We  propose\nCvT here."
    (span,) = render.quote_spans(text, "We propose CvT here.")
    assert text[span[0]:span[1]] == "We  propose\nCvT here."
    assert render.quote_spans(text, "we propose cvt") == [(0, 15)]


def test_highlight_marks_quote_and_escapes_both_sides():
    html, found = render.highlight(EVIL.abstract, "We show <img src=x onerror=alert(1)> works.")
    tree = Tree(html)
    assert found
    assert not tree.find("img") and tree.find("mark")
    assert tree.marks == ["We show <img src=x onerror=alert(1)> works."]
    assert tree.text == EVIL.abstract  # nothing lost or added


def test_highlight_reports_missing_quote():
    html, found = render.highlight(ABSTRACT, "A sentence from elsewhere.")
    assert not found and "<mark>" not in html


def test_link_markers_only_for_cited_numbers():
    out = render.link_markers("a [1] b [3] c [1]", turn=2, numbers={1})
    tree = Tree(out)
    assert [a["href"] for a in tree.find("a")] == ["#cite-2-1", "#cite-2-1"]
    assert "[3]" in tree.text


def test_citation_card_structure():
    card = render.citation_card(_answer().citations[0], CVT, 0.8734, turn=3)
    tree = Tree(card)
    (details,) = tree.find("details")
    assert details["id"] == "cite-3-1"
    assert tree.marks == ["We propose CvT, which adds convolutions to ViT."]
    assert "score 0.87" in tree.text and "2021" in tree.text and "A, B, C et al." in tree.text
    assert "\n\n" not in card  # one HTML block for Markdown: no blank line may split it


def test_citation_card_escapes_title_and_flags_unfound_quote():
    cite = Citation(1, EVIL.paper_id, EVIL.title, "Not in the abstract.")
    tree = Tree(render.citation_card(cite, EVIL, None, turn=1))
    assert not tree.find("script") and not tree.find("img")
    assert "<script>alert('t')</script> Attacks" in tree.text
    assert "does not appear verbatim" in tree.text and not tree.marks


def test_answer_html_markers_point_at_cards_of_the_same_turn():
    tree = Tree(render.answer_html(_answer(), turn=4))
    ids = {d["id"] for d in tree.find("details")}
    hrefs = [a["href"] for a in tree.find("a", **{"class": "cite-marker"})]
    assert ids == {"cite-4-1", "cite-4-2"}
    assert hrefs == ["#cite-4-1", "#cite-4-2"]  # [7] cites nothing, so it links nowhere
    assert "See also [7]" in tree.text
    assert not tree.find("script") and not tree.find("img")


def test_answer_html_card_falls_back_to_index_papers():
    ans = _answer(sources=[])  # e.g. an answerer that did not return sources
    tree = Tree(render.answer_html(ans, turn=1, papers={CVT.paper_id: CVT}))
    assert "We propose CvT, which adds convolutions to ViT." in tree.marks


def test_abstention_is_flagged_without_cards():
    nearest = [Source(CVT, 0.5, dense=0.31)]
    ans = Answer("cake?", "The corpus does not cover this question.", abstained=True, sources=nearest)
    tree = Tree(render.answer_html(ans, turn=1))
    assert tree.find("div", **{"class": "abstain-banner"}) and not tree.find("details")
    panel = Tree(render.sources_panel(ans))
    assert "nearest, not answering" in panel.text and CVT.title in panel.text


def test_notes_and_flags_are_shown():
    tree = Tree(render.answer_html(_answer(notes=["LLM unreachable: <fell back>"], unsupported=["x"],
                                           answerer="extractive"), turn=1))
    assert "Note: LLM unreachable: <fell back>" in tree.text
    assert "Removed: 1 sentence(s) that no cited abstract supports" in tree.text


def test_sources_panel_ranks_every_paper_with_scores_and_markers():
    tree = Tree(render.sources_panel(_answer()))
    rows = tree.find("li")
    assert [r["class"] for r in rows] == ["source cited", "source cited"]
    assert tree.text.index(CVT.title) < tree.text.index("Attacks")
    assert "score 1.000 · cosine 0.710 · BM25 12.5" in tree.text
    assert "score 0.620 · cosine 0.550" in tree.text
    assert "[1]" in tree.text and "[2]" in tree.text
    assert not tree.find("script")
    assert "appear here" in Tree(render.sources_panel(None)).text


def test_error_and_streaming_text_are_escaped():
    tree = Tree(render.error_html("bad <b>question</b>"))
    assert [t for t, _ in tree.tags] == ["div", "strong"] and "bad <b>question</b>" in tree.text
    # A preview is plain text in one HTML block: an LLM's raw image syntax is not read as Markdown.
    preview = render.streaming_html("<i>x</i> ![p](http://h/p.png)\n\nnext")
    assert [t for t, _ in Tree(preview).tags] == ["div", "br", "br", "span"] and "\n" not in preview
    assert "<i>x</i> ![p](http://h/p.png)" in Tree(preview).text


# --- corpus text is data (issue 13, items 10-12) ------------------------------------------------

HOSTILE = Paper("p-rtl", "invoice\u202egpj.exe ![x](http://h/p.png)",
                "Objects are detected, see http://h/bare [2] [3]. Done <img src=http://h/i.png>.")


def _hostile_answer() -> Answer:
    quote = "Objects are detected, see http://h/bare (2) (3)."  # as rag.citations.unmarked gives it
    text = f"1. **{escape_md(HOSTILE.title)}** [1]: {escape_md(quote)}"
    return Answer("q", text, [Citation(1, HOSTILE.paper_id, HOSTILE.title, quote)], sources=[Source(HOSTILE, 1.0)])


def test_answer_text_is_shown_as_the_core_escaped_it_not_twice():
    out = render.answer_html(_hostile_answer(), turn=1)
    assert escape_md("![x](") in out  # the core's escapes, untouched
    assert "&amp;" not in out.split('<div class="cite-cards">')[0]  # no second, HTML escaping of the text
    assert "http\\://h/bare" in out  # a bare URL cannot become a link (GFM autolinks)


def test_inert_urls_breaks_autolinks_only():
    assert render.inert_urls("see http://h/x, www.h.org or a@h.org") == "see http\\://h/x, www\\.h.org or a\\@h.org"
    assert render.inert_urls("**CvT** [1]: 87.7% top-1.") == "**CvT** [1]: 87.7% top-1."


def test_every_corpus_string_is_isolated_and_its_controls_shown():
    ans = _hostile_answer()
    for markup in (render.answer_html(ans, turn=1), render.sources_panel(ans)):
        assert "\u202e" not in markup and "invoice⟨U+202E⟩gpj.exe" in markup
    card = render.citation_card(ans.citations[0], HOSTILE, 1.0, turn=1)
    assert card.count("<bdi>") == 3  # title, quote, abstract
    assert '<span class="cite-title"><bdi>' in card and '<span class="cite-quote">“<bdi>' in card
    assert '<span class="src-name"><bdi>' in render.sources_panel(ans)
    assert not Tree(card).find("img") and not Tree(card).find("a")


def test_card_quote_reads_as_the_text_shows_it_and_is_highlighted():
    ans = _hostile_answer()
    card = Tree(render.citation_card(ans.citations[0], HOSTILE, 1.0, turn=1))
    assert "“Objects are detected, see http://h/bare (2) (3).”" in card.text and "[2]" not in card.text.split("”")[0]
    assert card.marks == ["Objects are detected, see http://h/bare [2] [3]."]  # found although shown as (2) (3)
    assert "does not appear verbatim" not in card.text


def test_question_is_shown_as_text():
    tree = Tree(render.question_html("see  ![x](http://h/p.png) <b>now</b>"))
    assert [t for t, _ in tree.tags] == ["div"] and tree.text == "see ![x](http://h/p.png) <b>now</b>"


# --- launch helpers (ui/app.py) ---------------------------------------------------------------

def test_call_settings_applies_ui_choices_only_when_given(tmp_path):
    from ui.params import call_settings

    s = Settings(data_dir=tmp_path)
    assert call_settings(s, None, None) is s
    t = call_settings(s, "llm", 5.0)
    assert (t.answerer, t.max_papers, t.data_dir) == ("llm", 5, tmp_path)
    assert call_settings(s, "bogus", 0).answerer == s.answerer


@pytest.mark.parametrize("host,warn", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                       ("0.0.0.0", True), ("192.168.1.20", True), ("myhost.lan", True)])
def test_exposure_warning_for_reachable_hosts_without_password(tmp_path, host, warn):
    from ui.app import exposure_warning

    s = Settings(data_dir=tmp_path, ui_host=host)
    assert (exposure_warning(s) is not None) is warn
    locked = Settings(data_dir=tmp_path, ui_host=host, ui_username="ann", ui_password="pw")
    assert exposure_warning(locked) is None


def test_exposure_warning_says_what_a_visitor_can_and_cannot_do(tmp_path):
    from ui.app import exposure_warning

    text = exposure_warning(Settings(data_dir=tmp_path, ui_host="0.0.0.0", ui_max_request_bytes=65536))
    for part in ("/ask API", "every title and abstract", "cannot upload files", "other visitors' conversations",
                 "65,536 bytes", "RAG_UI_USERNAME"):
        assert part in text, part
    assert "LLM endpoint" not in text
    with_llm = exposure_warning(Settings(data_dir=tmp_path, ui_host="0.0.0.0", llm_base_url="http://127.0.0.1:1/v1"))
    assert "LLM endpoint, at your cost" in with_llm


def test_launch_options_are_safe_by_default(tmp_path):
    from ui.app import launch_options

    opts = launch_options(Settings(data_dir=tmp_path))
    assert opts["server_name"] == "127.0.0.1" and opts["auth"] is None and opts["share"] is False
    assert "allowed_paths" not in opts and "gradio" not in opts["footer_links"]
    assert opts["max_file_size"] == Settings(data_dir=tmp_path).ui_max_upload_bytes
    assert [m.cls.__name__ for m in opts["app_kwargs"]["middleware"]] == ["Guard"]
    assert ".cite-card" in opts["css"]
    auth = launch_options(Settings(data_dir=tmp_path, ui_username="ann", ui_password="pw"))["auth"]
    assert auth == ("ann", "pw")


def test_half_configured_login_is_refused_by_settings(tmp_path):
    with pytest.raises(ValidationError, match="both"):
        Settings(data_dir=tmp_path, ui_username="ann")


def test_answer_json_shape():
    """`Answer.to_dict` is the one JSON form (`/ask` adds only its Markdown chat turn)."""
    from rag.render import to_markdown
    from ui.render import inert_urls

    ans = _answer()
    rec = ans.to_dict()
    assert inert_urls(to_markdown(ans)).endswith("[2] " + escape_md(EVIL.title))
    assert rec["message"] == ans.as_message() and rec["message"]["citations"][1]["paper_id"] == "p-evil"
    assert rec["citations"][0] == {"n": 1, "paper_id": "p-cvt", "title": CVT.title,
                                   "quote": "We propose CvT, which adds convolutions to ViT."}
    assert [s["paper_id"] for s in rec["sources"]] == ["p-cvt", "p-evil"] and rec["abstained"] is False
    assert rec["sources"][0]["year"] == CVT.year and rec["sources"][0]["authors"] == CVT.authors


# --- real answers from the real pipeline ----------------------------------------------------

@pytest.mark.parametrize("question", ["Which papers bridge CNNs and ViTs?", "What accuracy does CvT reach on ImageNet?",
                                      "How does MambaOut compare Mamba with CNNs?"])
def test_every_real_quote_is_highlighted_in_its_abstract(pipeline, bundled_settings, question):
    ans = pipeline.answer(question, [], settings=bundled_settings)
    assert ans.citations
    tree = Tree(render.answer_html(ans, turn=1, papers=pipeline.index.papers))
    cards = tree.find("details")
    assert len(cards) == len(ans.citations)
    assert "does not appear verbatim" not in tree.text
    for c in ans.citations:
        html, found = render.highlight(pipeline.index.papers[c.paper_id].abstract, c.quote)
        assert found, (c.title, c.quote)
        assert all(m in " ".join(pipeline.index.papers[c.paper_id].abstract.split()) for m in
                   [" ".join(m.split()) for m in Tree(html).marks])


def test_answerer_choice_enables_llm_only_with_an_endpoint(tmp_path):
    from ui.app import _answerer_choice

    off = _answerer_choice(Settings(data_dir=tmp_path))
    assert off.interactive is False and "no endpoint configured" in off.info and off.value == "extractive"
    on = _answerer_choice(Settings(data_dir=tmp_path, llm_base_url="http://user:pw@127.0.0.1:8080/v1", answerer="llm"))
    assert on.interactive is not False and on.value == "llm"
    assert "127.0.0.1:8080" in on.info and "pw" not in on.info
