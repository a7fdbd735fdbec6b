"""Plain-text and Markdown renderings of an `Answer`, shared by the CLI, the UI and the eval.

The reference block (`[n] Title` lines) is also what `questions.previous_turn` reads back
from conversation history to resolve follow-up questions, so keep the two in step.
"""

from __future__ import annotations

from rag.models import Answer


def references(answer: Answer) -> str:
    """`[n] Title` lines, one per citation, in marker order."""
    return "\n".join(f"[{c.n}] {c.title}" for c in sorted(answer.citations, key=lambda c: c.n))


def to_markdown(answer: Answer) -> str:
    """Answer text, then its notes and references: what a chat turn shows and stores."""
    parts = [answer.text]
    if answer.unsupported:
        parts.append("_Flagged: " + str(len(answer.unsupported)) + " sentence(s) lack support in the cited abstract._")
    parts += [f"_Note: {note}_" for note in answer.notes]
    if answer.citations:
        parts.append("References:\n\n" + references(answer))
    return "\n\n".join(parts)
