"""Plain-text and Markdown renderings of an `Answer`, shared by the CLI, the UI and the eval.

`Answer.text` is already Markdown with its corpus text inert; these add the notes and the
reference block (`[n] Title` lines), which `conversation.previous_turn` can read back from
history when an assistant turn carries no `citations` field.
"""

from __future__ import annotations

from rag.models import Answer
from rag.text import escape_md


def references(answer: Answer, markdown: bool = False) -> str:
    """`[n] Title` lines, one per citation, in marker order; titles made inert for Markdown
    when `markdown`."""
    show = escape_md if markdown else str
    return "\n".join(f"[{c.n}] {show(c.title)}" for c in sorted(answer.citations, key=lambda c: c.n))


def to_markdown(answer: Answer) -> str:
    """Answer text, then its notes and references: what a chat turn shows and stores."""
    parts = [answer.text]
    if answer.unsupported:
        parts.append("_Flagged: " + str(len(answer.unsupported)) + " sentence(s) lack support in the cited abstract._")
    parts += [f"_Note: {note}_" for note in answer.notes]
    if answer.citations:
        parts.append("References:\n\n" + references(answer, markdown=True))
    return "\n\n".join(parts)
