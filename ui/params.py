"""The chat UI's request parameters, checked: what the page's controls and the `/ask` API
send, turned into Settings for one question, or a `QuestionError` that says what is wrong.

The API takes JSON from anyone who can reach the server, so nothing here trusts a type
hint: `follow_up=[1]`, `max_papers="abc"` or NaN get a one-line reason, never an internal
error. Settings for a question are made only through `Settings.with_overrides` (validated).
"""

from __future__ import annotations

import math
from collections.abc import Container

from pydantic import ValidationError

from rag.errors import ConfigError, QuestionError
from rag.models import Filters
from rag.settings import Settings, explain

FOLLOW_UP = {"auto": None, "on": True, "off": False}
ANSWERERS = ("extractive", "llm")
ROLES = ("user", "assistant")


def follow_up_mode(value: object) -> bool | None:
    """`"auto"` (or nothing) -> None, `"on"` -> True, `"off"` -> False; anything else fails."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in FOLLOW_UP:
        return FOLLOW_UP[value]
    raise QuestionError(f"follow_up must be one of {', '.join(map(repr, FOLLOW_UP))}, got {value!r:.60}")


def paper_limit(value: object) -> int | None:
    """A whole number of papers (the slider sends floats such as 5.0); 0 or nothing keeps
    the server's setting (None). `paper_limit(3.0)` -> 3; `paper_limit("abc")` fails."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QuestionError(f"max_papers must be a whole number, got {value!r:.60}")
    if not math.isfinite(value) or value != int(value) or value < 0:
        raise QuestionError(f"max_papers must be a whole number from 0 up (0 keeps the server's), got {value!r}")
    return int(value) or None


def history_messages(value: object, known: Container[str] = ()) -> list[dict]:
    """Earlier turns as the pipeline reads them: a list of {"role": "user"|"assistant",
    "content": str} messages, an assistant one optionally with its "citations" list. A
    message that is not one is refused with the reason; of "citations", only those naming a
    paper in `known` (the index's ids) are kept (`well_formed_citations`), since a client may
    send anything there and a paper may have been removed since it was cited."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise QuestionError(f"history must be a list of messages, got {type(value).__name__}")
    out = []
    for i, msg in enumerate(value, start=1):
        if not isinstance(msg, dict) or msg.get("role") not in ROLES or not isinstance(msg.get("content"), str):
            raise QuestionError(f'history item {i} is not a {{"role": "user" or "assistant", "content": text}} '
                                "message")
        if "citations" in msg:
            if not isinstance(msg["citations"], list):
                raise QuestionError(f'history item {i}: "citations" must be a list')
            msg = {**msg, "citations": well_formed_citations(msg["citations"], known)}
        out.append(msg)
    return out


def well_formed_citations(citations: list, known: Container[str]) -> list[dict]:
    """The citations of a history message that name a known paper, as `Answer.as_message`
    writes them: {"n": int, "paper_id": str, "title": str}, `n` and `title` only when well
    typed; a bare id string is taken as {"paper_id": id}. Anything else is dropped.
    `well_formed_citations([{"n": "1", "paper_id": "a"}, "b", {"paper_id": 5}], {"a", "b"})`
    -> `[{"paper_id": "a"}, {"paper_id": "b"}]`."""
    out = []
    for c in citations:
        c = {"paper_id": c} if isinstance(c, str) else c
        if not isinstance(c, dict) or not isinstance(c.get("paper_id"), str) or c["paper_id"] not in known:
            continue
        kept = {"paper_id": c["paper_id"]}
        if isinstance(c.get("n"), int) and not isinstance(c["n"], bool):
            kept["n"] = c["n"]
        if isinstance(c.get("title"), str):
            kept["title"] = c["title"]
        out.append(kept)
    return out


def question_text(value: object) -> str:
    if not isinstance(value, str):
        raise QuestionError(f"the question must be text, got {type(value).__name__}")
    return value


def call_settings(settings: Settings, answerer: object = None, max_papers: object = None) -> Settings:
    """Settings for one question: the UI's choices over the launch settings. An LLM choice
    without an endpoint stays "llm": the pipeline answers extractively and says why. A
    paper limit below the server's minimum lowers the minimum with it."""
    update: dict = {}
    if answerer in ANSWERERS:
        update["answerer"] = answerer
    limit = paper_limit(max_papers)
    if limit is not None:
        update["max_papers"] = limit
        update["min_papers"] = min(settings.min_papers, limit)
    if not update:
        return settings
    try:
        return settings.with_overrides(update)
    except ValidationError as err:
        raise ConfigError(explain(err, {"max_papers": "max_papers", "answerer": "answerer"})) from None


def _field(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise QuestionError(f"{name} must be text, got {type(value).__name__}")
    return " ".join(value.split())[:200] or None


def filters(year: object = None, source: object = None, author: object = None,
            category: object = None) -> Filters | None:
    """The metadata filters of one question, or None for none: `year` as "2021",
    "2020-2024", "2020-" or "-2019"; `source` a file name as the sources list shows it;
    `author` one author's name; `category` an arXiv category ("cs.CV"). A year that does
    not parse is refused with the reason. `filters("2020-2024")` -> Filters(year=(2020, 2024))."""
    text = _field("year", year)
    try:
        span = Filters.parse_year(text) if text else None
    except ValueError as err:
        raise QuestionError(str(err)) from None
    result = Filters(year=span, source=_field("source", source), author=_field("author", author),
                     category=_field("category", category))
    return None if result.empty else result
