"""HTML for the chat UI: pure functions from `rag.models` records to strings.

What a chat turn shows: the answer text with each marker `[n]` linked to its citation card,
the numbered cards (title, score, the supporting quote, and the full abstract with the quote
highlighted), and a sources panel ranking every paper the answerer saw. Nothing here
retrieves or scores; it only lays out what the pipeline returned.

Corpus text is data. `Answer.text` is Markdown in which the core has already made every
corpus string inert (`rag.text.escape_md`), so it is shown as it is, never escaped twice.
Every corpus string this module places itself (titles, quotes, abstracts, authors) goes
through `corpus`: HTML-escaped by `esc` (which also escapes the characters Gradio's
templates read, `$`, `{`, `}`) and isolated in a `<bdi>`, so a right-to-left override in a
title cannot run on into the rest of the line; the HTML it sits in is a block on one line,
which Markdown passes through without reading links or images in it. Explicit bidi controls
that reach the answer text, where no per-string isolation is possible, are shown as visible
codes (`reveal_controls`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from rag.models import Answer, Citation, Paper, Source
from rag.text import author_names, unescape_md

_EXTRA = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"})
_MARKER = re.compile(r"\[(\d+)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_SHOWN_NUMBER = re.compile(r"\((\d+)\)")  # how a quote shows an abstract's "[7]" (rag.citations.unmarked)


# Embeddings, overrides and isolates: the characters that reorder what follows them.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def esc(text: object) -> str:
    """Text made inert inside HTML and Markdown: `esc("<b>$x$</b>")` ->
    `"&lt;b&gt;&#36;x&#36;&lt;/b&gt;"`."""
    return html.escape(str(text), quote=True).translate(_EXTRA)


def reveal_controls(text: str) -> str:
    """Explicit bidi controls shown as their code points, so they cannot reorder the line:
    `reveal_controls("invoice\\u202egpj.exe")` -> `"invoice⟨U+202E⟩gpj.exe"`."""
    return _BIDI_CONTROLS.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)


# What GitHub-flavoured Markdown turns into a link with no brackets at all: "http://h/x",
# "www.h.org", "a@h.org". A backslash before the ":", "." or "@" ends the autolink and still
# shows the character (CommonMark: any ASCII punctuation may be escaped).
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(:)(?=//)|(?<=\bwww)(\.)|(?<=\w)(@)(?=\w)", re.I)


def inert_urls(markdown: str) -> str:
    """Markdown with its bare URLs and e-mail addresses left as text, not links: the
    assistant's own structure holds none, so every one comes from the corpus or a model.
    `inert_urls("see http://h/x or www.h.org")` -> `"see http\\://h/x or www\\.h.org"`."""
    return _AUTOLINK.sub(lambda m: "\\" + m.group(), markdown)


def corpus(text: object) -> str:
    """A corpus string for HTML: escaped, its controls revealed, isolated in `<bdi>`.
    `corpus("<b>x</b>")` -> `"<bdi>&lt;b&gt;x&lt;/b&gt;</bdi>"`."""
    return f"<bdi>{esc(reveal_controls(str(text)))}</bdi>"


def anchor_id(turn: int, n: int) -> str:
    """Element id of citation card `n` of chat turn `turn`: `anchor_id(2, 3)` -> `"cite-2-3"`.
    The turn keeps ids unique when several answers are on the page."""
    return f"cite-{turn}-{n}"


def quote_spans(abstract: str, quote: str) -> list[tuple[int, int]]:
    """Character spans of `abstract` that the quote covers, sorted and merged.

    The quote is matched whole first, then sentence by sentence (an extractive quote may
    join two sentences that are apart in the abstract), ignoring differences in whitespace
    and, failing that, in case. A number the quote shows as "(7)" matches the abstract's
    "[7]" (quotes never carry bracketed numbers, which would pass for markers).
    `quote_spans("A b. C d. E f.", "A b. E f.")` -> `[(0, 4), (10, 14)]`;
    `quote_spans("As in [7].", "As in (7).")` -> `[(0, 10)]`; a quote not in the abstract gives `[]`.
    """
    spans: list[tuple[int, int]] = []
    pieces = [quote] + [p for p in _SENTENCE_END.split(quote) if p != quote]
    for piece in pieces:
        words = piece.split()
        if not words:
            continue
        pattern = r"\s+".join(_word_pattern(w) for w in words)
        m = re.search(pattern, abstract) or re.search(pattern, abstract, re.I)
        if m:
            spans.append(m.span())
            if piece is quote:
                break
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _word_pattern(word: str) -> str:
    parts = _SHOWN_NUMBER.split(word)  # text, number, text, ...
    return "".join(re.escape(p) if i % 2 == 0 else rf"[\[(]{p}[\])]" for i, p in enumerate(parts))


def highlight(abstract: str, quote: str) -> tuple[str, bool]:
    """(escaped abstract with the quote's spans in `<mark>`, whether the quote was found).

    `highlight("We use <b>. It works.", "It works.")` ->
    `("We use &lt;b&gt;. <mark>It works.</mark>", True)`.
    """
    spans = quote_spans(abstract, quote)
    out, pos = [], 0
    for start, end in spans:
        out.append(esc(reveal_controls(abstract[pos:start])))
        out.append(f"<mark>{esc(reveal_controls(abstract[start:end]))}</mark>")
        pos = end
    out.append(esc(reveal_controls(abstract[pos:])))
    return "".join(out), bool(spans)


def link_markers(text_html: str, turn: int, numbers: set[int]) -> str:
    """Markers `[n]` (for cited `n` only) as links to their card, in already escaped text.

    `link_markers("CvT [1].", 1, {1})` ->
    `'CvT <a class="cite-marker" href="#cite-1-1">[1]</a>.'`
    """
    def link(m: re.Match) -> str:
        n = int(m.group(1))
        if n not in numbers:
            return m.group(0)
        target = anchor_id(turn, n)
        return f'<a class="cite-marker" href="#{target}">[{n}]</a>'

    return _MARKER.sub(link, text_html)


def _score(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def citation_card(citation: Citation, paper: Paper | None, score: float | None, turn: int) -> str:
    """One numbered card: title, score, the quote, and the abstract (collapsed) with the
    quote highlighted. One line of HTML, so Markdown passes it through untouched."""
    abstract = paper.abstract if paper else ""
    body, found = highlight(abstract, citation.quote) if abstract else ("", False)
    meta = [f'<span class="cite-score" title="retrieval score (fused, relative to the best paper)">'
            f"score {_score(score)}</span>"]
    if paper and paper.year:
        meta.append(f'<span class="cite-year">{corpus(paper.year)}</span>')
    if paper and paper.authors:
        meta.append(f'<span class="cite-authors">{corpus(_short_authors(paper.authors))}</span>')
    missing = "" if found or not abstract else (
        '<div class="cite-missing">The quote does not appear verbatim in this abstract.</div>')
    link = (f'<a class="cite-link" href="{esc(paper.url)}" target="_blank" rel="noopener noreferrer">paper page ↗</a>'
            if paper and paper.url and paper.url.startswith(("https://", "http://")) else "")
    return (
        f'<details class="cite-card" id="{anchor_id(turn, citation.n)}">'
        f'<summary><span class="cite-n">{citation.n}</span>'
        f'<span class="cite-head"><span class="cite-title">{corpus(citation.title)}</span>'
        f'<span class="cite-meta">{" · ".join(meta)}</span></span>'
        f'<span class="cite-quote">“{corpus(citation.quote)}”</span></summary>'
        f'<div class="cite-abstract"><div class="cite-label">Abstract — supporting passage highlighted</div>'
        f'<p class="cite-abstract-text"><bdi>{body}</bdi></p>{missing}{link}</div></details>'
    )


def _short_authors(authors: str, most: int = 3) -> str:
    names = author_names(authors)
    return ", ".join(names[:most]) + (" et al." if len(names) > most else "")


def citation_cards(answer: Answer, turn: int, papers: Mapping[str, Paper] | None = None) -> str:
    """All cards of an answer, in marker order. Papers come from `answer.sources`, else from
    `papers` (the index's table), so a card can always show the full abstract."""
    by_id = {s.paper_id: s for s in answer.sources}
    cards = []
    for c in sorted(answer.citations, key=lambda c: c.n):
        src = by_id.get(c.paper_id)
        paper = src.paper if src else (papers or {}).get(c.paper_id)
        cards.append(citation_card(c, paper, src.score if src else None, turn))
    if not cards:
        return ""
    return f'<div class="cite-cards"><div class="cite-cards-head">Citations ({len(cards)})</div>{"".join(cards)}</div>'


def answer_html(answer: Answer, turn: int, papers: Mapping[str, Paper] | None = None) -> str:
    """The chat message of a finished answer: text with linked markers, notes, then cards;
    an abstention is flagged as such, above the nearest papers it names."""
    # Markdown whose corpus strings the core made inert: escaping it again would show "\\[".
    text = link_markers(inert_urls(reveal_controls(answer.text)), turn, {c.n for c in answer.citations})
    parts = []
    if answer.abstained:
        parts.append('<div class="abstain-banner"><strong>Not answered from the corpus.</strong> '
                     "No abstract gives enough evidence; the papers below are the nearest, not answering.</div>")
    parts.append(text)
    if answer.unsupported:
        parts.append(f'<div class="answer-note flagged">Removed: {len(answer.unsupported)} sentence(s) that no '
                     "cited abstract supports.</div>")
    parts += [f'<div class="answer-note">Note: {esc(note)}</div>' for note in answer.notes]
    if answer.answerer != "extractive" or answer.notes:
        parts.append(f'<div class="answer-by">answered by: {esc(answer.answerer)}</div>')
    cards = citation_cards(answer, turn, papers)
    if cards:
        parts.append(cards)
    return "\n\n".join(parts)


def streaming_html(text: str) -> str:
    """The answer so far, while it streams, as plain text: an LLM's deltas are raw (the core
    makes its links inert only in the final Answer), so none of it is read as Markdown. One
    line of HTML, which Markdown passes through; markers are linked once the cards exist."""
    lines = esc(reveal_controls(unescape_md(text))).split("\n")
    return f'<div class="streaming">{"<br>".join(lines)} <span class="typing">▍</span></div>'


def sources_panel(answer: Answer | None) -> str:
    """Every paper the answerer saw, ranked, with its scores; cited ones carry their marker.
    For an abstention the list is headed "nearest, not answering"."""
    if answer is None:
        return ('<div class="sources empty"><div class="sources-head">Sources</div>'
                "The papers behind each answer appear here, ranked with their retrieval scores.</div>")
    if not answer.sources:
        return '<div class="sources empty">No paper was retrieved for this question.</div>'
    cited: dict[str, list[int]] = {}
    for c in answer.citations:
        cited.setdefault(c.paper_id, []).append(c.n)
    best = max((s.score for s in answer.sources), default=0.0) or 1.0
    head = ("Sources · nearest, not answering" if answer.abstained
            else f"Sources · {len(answer.sources)} papers the answerer saw, ranked")
    rows = [_source_row(rank, s, cited.get(s.paper_id, []), best) for rank, s in enumerate(answer.sources, start=1)]
    kind = "sources abstained" if answer.abstained else "sources"
    return (f'<div class="{kind}"><div class="sources-head">{head}</div>'
            f'<ol class="source-list">{"".join(rows)}</ol></div>')


def _source_row(rank: int, src: Source, markers: list[int], best: float) -> str:
    width = max(0.0, min(1.0, src.score / best)) * 100
    details = [f"score {_score(src.score, 3)}"]
    if src.dense is not None:
        details.append(f"cosine {_score(src.dense, 3)}")
    if src.bm25 is not None:
        details.append(f"BM25 {_score(src.bm25, 1)}")
    badge = "".join(f'<span class="src-cited">[{n}]</span>' for n in sorted(markers))
    year = f" ({corpus(src.paper.year)})" if src.paper.year else ""
    return (
        f'<li class="source{" cited" if markers else ""}">'
        f'<span class="src-rank">{rank}</span><div class="src-body">'
        f'<div class="src-title"><span class="src-name">{corpus(src.title)}</span>{year} {badge}</div>'
        f'<div class="src-bar"><span style="width:{width:.0f}%"></span></div>'
        f'<div class="src-meta">{" · ".join(details)}</div></div></li>'
    )


def question_html(question: str) -> str:
    """The user's question as the chat shows it: literal text, never Markdown (a pasted
    `![x](http://...)` must not make the browser fetch anything)."""
    return f'<div class="question-text">{esc(reveal_controls(" ".join(question.split())))}</div>'


def error_html(message: str) -> str:
    """A problem with the question or the service, as a chat message (never a traceback)."""
    return f'<div class="answer-error"><strong>Could not answer:</strong> {esc(message)}</div>'


def stats_html(papers: int, chunks: int, model: str, mode: str) -> str:
    """The corpus line under the title."""
    return (f'<div class="corpus-stats"><span><b>{papers:,}</b> papers</span><span><b>{chunks:,}</b> chunks</span>'
            f"<span>embeddings: {esc(model)}</span><span>retrieval: {esc(mode)}</span></div>")
