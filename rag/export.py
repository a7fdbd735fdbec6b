"""An answer's cited papers as BibTeX, what a user pastes into a reference manager (the
Markdown document with numbered references is `rag.render.to_markdown(answer, document=True)`).

`to_bibtex(answer)` writes
one entry per cited paper with bibtexparser 2.x's writer: the fields title, author, year,
doi, url, journal (or booktitle, for a conference), abstract; text fields LaTeX-encoded
(pylatexenc), so `Schölkopf` is `Sch{\\"o}lkopf` and `95%` is `95\\%`, with braces, backslashes
and quotes escaped so that no value can end its field early (`_latex`); DOI and URL as they
are but for the characters that would end the field, percent-encoded. Keys are stable:
first author's last name, year, first significant title word
(`dosovitskiy2021image`), with `a`, `b`, ... when two cited papers would share one.

Cited papers are found in `answer.sources` (the answerer always cites papers it saw), else
in `papers`, the index's table; a citation of a paper found in neither is exported from its
title alone. Nothing here decides what is cited.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import bibtexparser
from bibtexparser.model import Entry, Field
from pylatexenc.latexencode import unicode_to_latex

from rag.models import Answer, Citation, Paper
from rag.text import author_names

# Words a key never takes from a title; the first other word of three letters or more is used.
_STOP = {"a", "an", "the", "on", "of", "for", "and", "in", "to", "with", "via", "from", "is", "are", "do",
         "towards", "toward", "what", "how", "when", "why", "can", "at", "by", "as", "into"}
_CONFERENCE = re.compile(r"\b(conference|proceedings|workshop|symposium|cvpr|iccv|eccv|neurips|nips|icml|iclr|"
                         r"aaai|ijcai|acl|emnlp|naacl|coling|sigir|kdd|www|interspeech|icassp)\b", re.I)


def cited_papers(answer: Answer, papers: Mapping[str, Paper] | None = None) -> list[tuple[Citation, Paper]]:
    """(citation, paper) in marker order, one per cited paper (a paper cited under two
    markers appears once, at its first)."""
    by_id = {s.paper_id: s.paper for s in answer.sources}
    out, seen = [], set()
    for c in sorted(answer.citations, key=lambda c: c.n):
        if c.paper_id in seen:
            continue
        seen.add(c.paper_id)
        paper = by_id.get(c.paper_id) or (papers or {}).get(c.paper_id) or c.title_only()
        out.append((c, paper))
    return out


def _ascii_word(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower())


def entry_key(paper: Paper) -> str:
    """`entry_key(Paper("x", "An Image is Worth 16x16 Words", "", authors="Alexey Dosovitskiy, Lucas Beyer",
    year=2021))` -> `"dosovitskiy2021image"`; "anon" without authors, no year without one."""
    names = author_names(paper.authors)
    last = _ascii_word(names[0].split()[-1]) if names else ""
    word = next((w for w in (_ascii_word(t) for t in paper.title.split()) if len(w) >= 3 and w not in _STOP), "")
    return f"{last or 'anon'}{paper.year or ''}{word}"


# Characters that unicode_to_latex leaves as they are or encodes in a way that does not come
# back: a backslash, and a double quote (`''` reads back as a curly quote).
_LITERAL = {"\\": r"{\textbackslash}", '"': '{"}'}
_BRACES_AND_LITERALS = re.compile(r'[{}\\"]')


def _unmatched_braces(text: str) -> set[int]:
    """Positions of the braces in `text` that have no partner (`"a}b{c{d}"` -> {1, 3})."""
    opened: list[int] = []
    lone: set[int] = set()
    for i, ch in enumerate(text):
        if ch == "{":
            opened.append(i)
        elif ch == "}":
            if opened:
                opened.pop()
            else:
                lone.add(i)
    return lone | set(opened)


def _latex(text: str) -> str:
    """`text` as the LaTeX of a BibTeX field value that reads back as `text`, whatever it holds.

    BibTeX ends a value at the brace that balances its opening one, escaped or not, so a
    title with a stray `}` used to end its field early and let the rest (`@misc{evil,`,
    `title={...}`) become fields or entries of its own. Here braces that pair up are written
    `\\{`...`\\}` (balanced for BibTeX, literal braces for LaTeX), a lone brace
    `{\\textbraceleft}` / `{\\textbraceright}`, a backslash `{\\textbackslash}`, a double quote
    `{"}`; line breaks become spaces (BibTeX reads them as spaces anyway, and a blank line
    would be a paragraph break); the rest is pylatexenc's (`%` -> `\\%`, `ö` -> `{\\"o}`).

    `_latex('Eve }, title={x')` -> `'Eve {\\textbraceright}, title={\\textbraceleft}x'`.
    """
    text = " ".join(text.split())
    lone = _unmatched_braces(text)
    out, start = [], 0
    for m in _BRACES_AND_LITERALS.finditer(text):
        out.append(unicode_to_latex(text[start:m.start()], non_ascii_only=False, unknown_char_warning=False))
        ch = m.group()
        if ch in _LITERAL:
            out.append(_LITERAL[ch])
        elif m.start() in lone:
            out.append(r"{\textbraceleft}" if ch == "{" else r"{\textbraceright}")
        else:
            out.append("\\" + ch)
        start = m.end()
    out.append(unicode_to_latex(text[start:], non_ascii_only=False, unknown_char_warning=False))
    return "".join(out)


def _literal(value: str) -> str:
    """A URL or DOI for a BibTeX field: not LaTeX (`_` and `~` are meant), so the characters
    that would end the field or the entry (braces, backslash, double quote) and whitespace
    are percent-encoded, which leads to the same place: `_literal("x/}a b")` -> `"x/%7Da%20b"`."""
    return "".join(f"%{ord(ch):02X}" if ch in '{}\\"' or ch.isspace() else ch for ch in value.strip())


def bibtex_entry(paper: Paper, key: str) -> Entry:
    """One BibTeX entry for `paper` under `key` (text fields LaTeX-encoded)."""
    venue = paper.venue or ""
    conference = bool(venue) and bool(_CONFERENCE.search(venue))
    fields = [("title", _latex(paper.title)),
              ("author", " and ".join(_latex(a) for a in author_names(paper.authors))),
              ("year", str(paper.year) if paper.year else ""),
              ("booktitle" if conference else "journal", _latex(venue)),
              ("doi", _literal(paper.doi or "")), ("url", _literal(paper.url or "")),
              ("abstract", _latex(paper.abstract))]
    kind = "inproceedings" if conference else "article" if venue else "misc"
    return Entry(kind, key, [Field(name, value) for name, value in fields if value])


def to_bibtex(answer: Answer, papers: Mapping[str, Paper] | None = None) -> str:
    """The cited papers of `answer` as a BibTeX file (empty for an answer without citations)."""
    library = bibtexparser.Library()
    used: dict[str, int] = {}
    for _, paper in cited_papers(answer, papers):
        key = base = entry_key(paper)
        if base in used:  # a second paper with the same key: dosovitskiy2021imagea, ...b
            used[base] += 1
            key = base + "abcdefghijklmnopqrstuvwxyz"[(used[base] - 1) % 26]
        else:
            used[base] = 0
        library.add(bibtex_entry(paper, key))
    return bibtexparser.write_string(library) if library.entries else ""
