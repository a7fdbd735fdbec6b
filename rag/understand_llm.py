"""Question understanding by an LLM, for when an OpenAI-compatible endpoint is configured.

`Settings.understanding="llm"` asks the endpoint, once per question, with prompts/understand.md:
a follow-up rewritten as a standalone question ("Which of those are fast?" -> "Which vision
transformer papers are designed for fast inference?"), the question's `Kind`, and a year
range the question states ("papers since 2021") as a retrieval filter. The reply must be one
JSON object; anything else (no endpoint, a timeout, malformed JSON, an unknown kind, years
that are not a range) is no reading at all, and the fitted question model decides as usual
(rag/question_model.py). The structural references to the conversation (restricting a
follow-up to the earlier answer's papers, positions) stay with `rag.questions.analyse`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from rag import prompts
from rag.conversation import Message, previous_turns
from rag.question_model import Kind
from rag.settings import Settings

log = logging.getLogger(__name__)
HISTORY_TURNS = 2  # earlier exchanges shown: enough to resolve "those" and "the second one"
MAX_TOKENS = 200
_OBJECT = re.compile(r"\{.*\}", re.S)


@dataclass(frozen=True)
class Reading:
    """What the LLM read in a question."""

    standalone: str
    kind: Kind
    years: tuple[int, int] | None = None


def parse(reply: str) -> Reading | None:
    """The reading in a model's reply, or None when it is not a valid one.

    >>> parse('{"standalone": "Which papers use CvT?", "kind": "list", "years": [2021, 9999]}')
    Reading(standalone='Which papers use CvT?', kind=<Kind.LIST: 'list'>, years=(2021, 9999))
    >>> parse('Sure! {"standalone": "x", "kind": "poem", "years": null}') is None
    True
    """
    found = _OBJECT.search(reply or "")
    if not found:
        return None
    try:
        data = json.loads(found.group(0))
        standalone, kind, years = str(data["standalone"]).strip(), Kind(data["kind"]), data.get("years")
    except (ValueError, KeyError, TypeError):
        return None
    if not standalone:
        return None
    if years is not None:
        if not (isinstance(years, list) and len(years) == 2 and all(isinstance(y, int) for y in years)
                and years[0] <= years[1]):
            return None
        years = (years[0], years[1])
    return Reading(standalone, kind, years)


def _history_text(history: list[Message] | None) -> str:
    turns = list(previous_turns(history))[:HISTORY_TURNS]
    lines = []
    for turn in reversed(turns):
        lines.append(f"User: {turn.question}")
        if turn.answer:
            lines.append(f"Assistant: {turn.answer[:600]}")
    return "\n".join(lines) or "(none)"


class LLMUnderstanding:
    """`LLMUnderstanding(settings).read(question, history)` -> a Reading, or None."""

    def __init__(self, settings: Settings, client=None):
        self.settings = settings
        if client is None:
            import openai

            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "no-key"
            client = openai.OpenAI(api_key=key, base_url=settings.llm_base_url or "https://api.openai.com/v1",
                                   timeout=settings.llm_timeout, max_retries=0)
        self.client = client

    def read(self, question: str, history: list[Message] | None) -> Reading | None:
        prompt = prompts.render("understand", question=question, history=_history_text(history),
                                kinds=", ".join(k.value for k in Kind))
        try:
            reply = self.client.chat.completions.create(
                model=self.settings.llm_model, messages=[{"role": "user", "content": prompt}],
                temperature=0.0, max_tokens=MAX_TOKENS, stream=False)
            text = reply.choices[0].message.content
        except Exception as err:  # any endpoint failure: the fitted model decides instead
            log.info("question understanding by LLM failed: %s", type(err).__name__)
            return None
        return parse(text)
