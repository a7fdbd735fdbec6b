"""Question checks and conversation handling: pure functions, no retrieval.

- `check_question` refuses input no search can use, with a specific message;
- `is_follow_up` tells whether a question leans on the previous turn ("which of those ...");
- `previous_turn` recovers the previous question and the papers the previous answer cited,
  from OpenAI/Gradio-style message history.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from rag.errors import QuestionError

Message = dict  # {"role": "user" | "assistant", "content": str}




def check_question(question: object, max_chars: int) -> str:
    """The question, whitespace-normalised, or QuestionError.

    `check_question("  what is CvT?\\n", 2000)` -> "what is CvT?"; `check_question("", 2000)` raises.
    """
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    if len(question) > max_chars:
        raise QuestionError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    # Control characters and lone surrogates (undecodable bytes smuggled in through argv or a
    # form) are refused; unassigned code points are not, since they include emoji newer
    # than this Python's Unicode tables.
    bad = sorted({f"U+{ord(c):04X}" for c in question if unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r"})
    if bad:
        raise QuestionError(f"the question contains control or binary characters ({', '.join(bad[:5])})")
    text = " ".join(question.split())
    if not text:
        raise QuestionError("the question is empty")
    if not any(c.isalnum() for c in text):
        raise QuestionError("the question has no words, only punctuation or symbols")
    return text


# How people ask for papers, as opposed to what about: "Which papers ...", "Are there any
# studies on ...", "List papers that ...", "Which of those ...", "... in the corpus". It names
# no topic, and in a sentence embedding it pulls every question towards every "we propose"
# abstract, so search embeds the rest (measured in README, "Answer quality").
_DOC = r"(?:papers?|articles?|works?|studies|publications?|abstracts?|research)"
_SCAFFOLD = re.compile(
    rf"""^\s*(?:
        (?:which|what)\s+(?:of\s+the\s+)?{_DOC}
      | (?:and\s+)?(?:which|what)\s+of\s+(?:those|these|them|the\s+above)(?:\s+{_DOC})?
      | (?:are|is)\s+there\s+(?:any\s+)?{_DOC}
      | (?:do|does)\s+any\s+{_DOC}
      | (?:can\s+you\s+|could\s+you\s+|please\s+)?(?:find|list|show|give|name|recommend|search\s+for|look\s+for)
        (?:\s+me)?\s+(?:all\s+|any\s+|some\s+|the\s+)?{_DOC}
      | {_DOC}
    )(?:\s+(?:in|from)\s+(?:the|this|our|my)\s+(?:corpus|collection))?
     (?:\s+(?:that|which|who|where))?\b""", re.I | re.X)
_IN_CORPUS = re.compile(r"\s+(?:in|from)\s+(?:the|this|our|my)\s+(?:corpus|collection)\b", re.I)


def search_text(question: str) -> str:
    """What to search for: the question without the asking-for-papers scaffolding.

    `search_text("Which papers in the corpus use graph networks?")` -> "use graph networks?";
    a question that is only scaffolding ("Which papers?") is returned unchanged.
    """
    rest = _IN_CORPUS.sub("", _SCAFFOLD.sub("", question, count=1)).strip(" ,:;-")
    return rest if any(c.isalnum() for c in rest) else question


_ANAPHORA = re.compile(
    r"\b(those|these|them|they|their|its|this one|that one|the (first|second|third|fourth|fifth|last|former|latter|above)( one| paper)?|"
    r"of the above|the same|previous|mentioned|which of)\b|^\s*(and|what about|how about)\b", re.I)
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_ORDINAL = re.compile(r"\bthe (first|second|third|fourth|fifth|last)( one| paper)?\b", re.I)
_REF_LINE = re.compile(r"^\s*\[(\d+)\]\s+(.+?)\s*$", re.M)


def is_follow_up(question: str, history: list[Message] | None) -> bool:
    """True when there is a previous answer and the question points back at it."""
    return bool(previous_turn(history)[0]) and bool(_ANAPHORA.search(question))


def ordinal(question: str) -> int | None:
    """`ordinal("What dataset does the second one use?")` -> 2; "the last" -> -1."""
    m = _ORDINAL.search(question)
    if not m:
        return None
    word = m.group(1).lower()
    return -1 if word == "last" else ORDINALS[word]


def previous_turn(history: list[Message] | None) -> tuple[str, list[str]]:
    """(previous user question, titles the previous assistant answer cited, in marker order).

    Cited titles are read from the answer's reference lines, `[n] Title`, as rendered by
    `rag.render.to_markdown` (the format the UI and CLI put into history).
    """
    question, titles = "", []
    if not isinstance(history, list):
        return question, titles  # None, or something that is not a message list
    for msg in reversed(history):
        if not isinstance(msg, dict):
            continue
        role, content = msg.get("role"), msg.get("content")
        if not isinstance(content, str):
            continue
        if role == "assistant" and not titles and not question:
            titles = [t.strip("*_ ") for _, t in sorted(_REF_LINE.findall(content), key=lambda x: int(x[0]))]
        elif role == "user":
            question = content
            break
    return question, titles


def resolve_titles(titles: list[str], lookup: Callable[[str], list[str]]) -> list[str]:
    """Paper ids for titles, in order, via `lookup(title) -> [paper_id, ...]`."""
    out: list[str] = []
    for title in titles:
        for pid in lookup(title):
            if pid not in out:
                out.append(pid)
    return out
