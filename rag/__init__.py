"""Grounded, cited question answering over research-paper abstracts.

    from rag import answer, retrieve
    a = answer("Which papers bridge CNNs and ViTs?")
    a.text, a.citations, a.abstained, a.sources
    papers = retrieve("vision transformers with convolutions", k=10)

Options (`answerer=`, `max_papers=`, `llm_base_url=`, any Settings field) are keyword
arguments; everything else comes from `Settings()` (RAG_* environment variables). These
functions are conveniences over one shared `Assistant` per store and model
(`default_assistant`); a program that wants to own and close what it opens uses
`with rag.open() as a:` (rag.assistant).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import lru_cache

from cachetools import LRUCache

from rag.assistant import Assistant, Stats, opened_by
from rag.assistant import open as open  # rag.open (an explicit re-export)
from rag.errors import ConfigError, QuestionError, RagError, StoreError
from rag.models import Answer, Chunk, Citation, Filters, Paper, Source
from rag.settings import Settings

# `rag.open` is left out of `*`: `from rag import *` must not shadow the builtin open.
__all__ = ["answer", "retrieve", "stream", "Assistant", "Stats", "Answer", "Citation", "Chunk", "Filters",
           "Paper", "Source", "Settings", "RagError", "QuestionError", "StoreError", "ConfigError",
           "default_assistant"]

# Assistants behind the module functions, one per distinct `opened_by(settings)`; the least
# recently used beyond this many is dropped (not closed: a call in another thread may still
# be using it; its threads and store go with it when no call holds it).
DEFAULT_ASSISTANTS = 4
_lock = threading.Lock()
_assistants: LRUCache[tuple, Assistant] = LRUCache(DEFAULT_ASSISTANTS)


@lru_cache(maxsize=8)
def _settings_for(environment: tuple) -> Settings:
    """`Settings()` for one RAG_* environment (`environment` is that environment, the cache
    key): reading it costs milliseconds, a noticeable share of a warm answer."""
    return Settings()


def _from_environment() -> Settings:
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("RAG_") or k == "OPENAI_API_KEY"))
    return _settings_for(key)


def _settings(settings: Settings | None, options: dict) -> Settings:
    """The call's Settings: `settings` (or the environment's) with `options` on top."""
    base = settings or _from_environment()
    return base.with_overrides(options) if options else base


def default_assistant(settings: Settings) -> Assistant:
    """The process's shared Assistant for what `settings` opens (store, embedding model,
    device, threads: every field but `rag.assistant.PER_CALL`), built on first use. Two stores, or one store
    with two devices, get two Assistants; per-call options (`max_papers`, ...) share one."""
    key = opened_by(settings)
    with _lock:
        found = _assistants.get(key)
        if found is None or found.closed:
            found = _assistants[key] = Assistant(settings)
    return found


def _filters(filters: Filters | None, year, source, author, category) -> Filters | None:
    """`filters`, or one built from the keyword conveniences: `year=(2020, 2024)`, `year=2021`
    or `year="2020-2024"`, `source=`, `author=`, `category=`."""
    if year is None and source is None and author is None and category is None:
        return filters
    if filters is not None:
        raise ValueError("give either filters= or year=/source=/author=/category=, not both")
    if isinstance(year, str):
        year = Filters.parse_year(year)
    elif isinstance(year, int):
        year = (year, year)
    elif year is not None:
        year = (int(year[0]), int(year[1]))
    return Filters(year=year, source=source, author=author, category=category)


def answer(question: str, history: list[dict] | None = None, *, settings: Settings | None = None,
           follow_up: bool | None = None, filters: Filters | None = None, year=None, source: str | None = None,
           author: str | None = None, category: str | None = None, **options) -> Answer:
    """Answer `question` from the corpus, citing the papers used.

    `history`: earlier turns as [{"role": "user"|"assistant", "content": str}]; a question
    that points back ("which of those ...") is answered against the previous answer's papers
    (`follow_up=True/False` forces it). Raises QuestionError (a ValueError) for unusable
    questions and StoreError when there is no index yet; never for LLM failures, which fall
    back to the extractive answer with a note. `filters` (or `year=(2020, 2024)`, `source=`,
    `author=`, `category=`) limit the papers searched; when no paper matches them the Answer
    says so (abstained, "No paper in the index matches the filter (...)").
    """
    s = _settings(settings, options)
    f = _filters(filters, year, source, author, category)
    return default_assistant(s).pipeline.answer(question, history, settings=s, follow_up=follow_up, filters=f)


def stream(question: str, history: list[dict] | None = None, *, settings: Settings | None = None,
           follow_up: bool | None = None, filters: Filters | None = None, year=None, source: str | None = None,
           author: str | None = None, category: str | None = None, **options) -> Iterator[str | Answer]:
    """Like `answer`, but yields text deltas as they come and the final Answer last."""
    s = _settings(settings, options)
    f = _filters(filters, year, source, author, category)
    return default_assistant(s).pipeline.stream(question, history, settings=s, follow_up=follow_up, filters=f)


def retrieve(question: str, k: int = 10, *, settings: Settings | None = None, filters: Filters | None = None,
             year=None, source: str | None = None, author: str | None = None, category: str | None = None,
             **options) -> list[Source]:
    """The `k` best papers for `question`, one entry per paper, best first; `filters` as for `answer`."""
    s = _settings(settings, options)
    f = _filters(filters, year, source, author, category)
    return default_assistant(s).pipeline.retrieve(question, k=k, settings=s, filters=f)
