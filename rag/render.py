"""The one Markdown rendering of an `Answer`, shared by the CLI, the UI and the eval.

`to_markdown(answer)` is a chat turn: the answer text, its flags and notes, and a reference
block of `[n] Title` lines, which `conversation.cited_titles` reads back from history when an
assistant turn carries no `citations` field. `to_markdown(answer, document=True)` is the same
answer as a document a user pastes into a paper (`rag ask --markdown`, the UI's download):
the question as a heading, then full references (authors, year, title, venue, link). Corpus
text is made inert with the one escaper, `rag.text.escape_md`; `Answer.text` already is.
BibTeX is `rag.export`. Nothing here decides what is cited.
"""

from __future__ import annotations

from collections.abc import Mapping

from rag.export import cited_papers
from rag.models import Answer, Paper
from rag.text import author_names, escape_md


def references(answer: Answer, markdown: bool = False) -> str:
    """`[n] Title` lines, one per citation, in marker order; titles made inert for Markdown
    when `markdown`."""
    show = escape_md if markdown else str
    return "\n".join(f"[{c.n}] {show(c.title)}" for c in sorted(answer.citations, key=lambda c: c.n))


def reference(n: int, paper: Paper) -> str:
    """One numbered reference line: `[1] A. Author, B. Author (2021). *Title*. Venue. <https://...>`."""
    names = author_names(paper.authors)
    who = ", ".join(names[:6]) + (" et al." if len(names) > 6 else "")
    parts = [f"[{n}]"]
    if who:
        parts.append(who + (f" ({paper.year})." if paper.year else "."))
    elif paper.year:
        parts.append(f"({paper.year}).")
    parts.append(f"*{escape_md(paper.title.rstrip('.'))}*.")
    if paper.venue:
        parts.append(escape_md(paper.venue) + ".")
    if paper.url:
        parts.append(f"<{paper.url}>")
    return " ".join(parts)


def to_markdown(answer: Answer, papers: Mapping[str, Paper] | None = None, document: bool = False) -> str:
    """Answer text, then its flags, notes and references: a chat turn, or with `document` a
    Markdown document (heading, full references; cited papers found in `answer.sources`,
    else in `papers`, the index's table)."""
    parts = [f"## {escape_md(' '.join(answer.question.split()))}"] if document else []
    parts.append(answer.text)
    if answer.unsupported:
        parts.append("_Flagged: " + str(len(answer.unsupported)) + " sentence(s) lack support in the cited abstract._")
    parts += [f"_Note: {note}_" for note in answer.notes]
    if answer.citations and not document:
        parts.append("References:\n\n" + references(answer, markdown=True))
    elif answer.citations:
        by_id = {p.paper_id: p for _, p in cited_papers(answer, papers)}
        refs = [reference(c.n, by_id[c.paper_id]) for c in sorted(answer.citations, key=lambda c: c.n)]
        parts.append("### References\n\n" + "\n\n".join(refs))
    return "\n\n".join(parts) + ("\n" if document else "")
