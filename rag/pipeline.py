"""The one place that wires corpus -> index -> retriever -> answerer from Settings.

`build_pipeline(settings)` opens the store and the embedder (each can be handed in, for tests
and benchmarks) and returns a `Pipeline`, whose `retrieve`, `answer` and `stream` are what the
public `rag.answer` / `rag.retrieve`, the CLI, the UI and the eval call. Per-call options come
as a Settings object; the index is opened once and shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rag.embedding import Embedder
from rag.extractive import Extractive, abstention, idf_table, question_kind
from rag.models import Answer, Source
from rag.questions import (
    Message, QuestionError, check_question, is_follow_up, ordinal, previous_turn, resolve_titles,
)
from rag.retrieval import Index, SearchParams, select
from rag.settings import Settings
from rag.store import Store, StoreError, open_client
from rag.text import terms


@dataclass
class Evidence:
    """What retrieval found for a question: the papers to use, and whether to abstain."""

    question: str  # as searched (a follow-up is searched as itself, restricted)
    kind: str
    ranked: list[Source]
    used: list[Source]
    abstain: bool
    follow_up: bool = False


class Pipeline:
    """Retrieval and answering over one opened index."""

    def __init__(self, settings: Settings, index: Index, llm=None):
        self.settings = settings
        self.index = index
        self.llm = llm  # an rag.llm.LLMAnswerer, built lazily per endpoint when asked for
        self._titles: dict[str, list[str]] = {}
        for pid, paper in index.papers.items():
            self._titles.setdefault(paper.title.casefold(), []).append(pid)
        self._names = _short_names(index)
        idf = idf_table([terms(t) for t in index.chunk_texts])
        self.extractive = Extractive(index.sentences, idf)

    # --- retrieval ----------------------------------------------------------------------
    def _params(self, s: Settings) -> SearchParams:
        return SearchParams(mode=s.retrieval_mode, candidates=s.candidate_chunks, fusion=s.fusion, rrf_k=s.rrf_k)

    def retrieve(self, question: str, k: int = 10, settings: Settings | None = None) -> list[Source]:
        """The `k` best papers for `question`, one entry per paper, best first."""
        s = settings or self.settings
        question = check_question(question, s.max_question_chars)
        return self.index.search(question, self._params(s))[:k]

    def named_papers(self, question: str) -> list[str]:
        """Ids of papers the question names by their short name ("ConViT", "CvT"), in the
        order the names appear in the question."""
        low = question.casefold()
        found = []
        for name, pids in self._names.items():
            pos = _find_word(low, name)
            if pos >= 0:
                found.append((pos, pids))
        return [pid for _, pids in sorted(found) for pid in pids]

    def gather(self, question: str, history: list[Message] | None, s: Settings,
               follow_up: bool | None = None) -> Evidence:
        """Retrieve, cut off, and decide whether to abstain."""
        params = self._params(s)
        prev_question, prev_titles = previous_turn(history)
        if follow_up is None:
            follow_up = is_follow_up(question, history)
        restrict = None
        if follow_up and prev_titles:
            restrict = resolve_titles(prev_titles, lambda t: self._titles.get(t.casefold(), []))
            nth = ordinal(question)
            if nth is not None and restrict:
                restrict = [restrict[nth - 1 if nth > 0 else -1]] if abs(nth) <= len(restrict) else restrict
        named = self.named_papers(question)
        kind = question_kind(question, named=len(named))
        if follow_up and restrict:
            ranked = self.index.search(question, params, restrict=restrict)
            # Restricted to papers already judged relevant: keep every one the new question matches.
            used = select(ranked, s.relative_cutoff, 1, s.max_papers)
            return Evidence(question, "list" if len(used) > 1 and kind == "fact" else kind, ranked, used,
                            abstain=not used, follow_up=True)
        query = f"{prev_question} {question}" if follow_up and prev_question else question
        ranked = self.index.search(query, params)
        if kind == "compare":
            by_id = {src.paper_id: src for src in ranked}
            pair = [by_id.get(pid) or Source(paper=self.index.papers[pid], score=0.0) for pid in named[:2]]
            return Evidence(query, kind, ranked, pair, abstain=False, follow_up=follow_up)
        used = select(ranked, s.relative_cutoff, s.min_papers, s.max_papers)
        return Evidence(query, kind, ranked, used, abstain=self._weak(ranked, s), follow_up=follow_up)

    def _weak(self, ranked: list[Source], s: Settings) -> bool:
        """Too little evidence to answer: the best paper's dense similarity is under the
        calibrated threshold (or, BM25-only, nothing matched at all)."""
        if not ranked:
            return True
        top_dense = max((src.dense for src in ranked[:5] if src.dense is not None), default=None)
        if top_dense is None:
            return s.retrieval_mode != "bm25" or not any(src.bm25 for src in ranked[:5])
        return top_dense < s.abstain_threshold

    # --- answering ----------------------------------------------------------------------
    def answer(self, question: str, history: list[Message] | None = None, settings: Settings | None = None,
               follow_up: bool | None = None) -> Answer:
        """A grounded answer; see `rag.answer` for the contract."""
        final = None
        for event in self.stream(question, history, settings, follow_up):
            if isinstance(event, Answer):
                final = event
        assert final is not None  # stream always ends with the Answer
        return final

    def stream(self, question: str, history: list[Message] | None = None, settings: Settings | None = None,
               follow_up: bool | None = None) -> Iterator[str | Answer]:
        """Text deltas as they are produced, then the final, validated `Answer`.

        Deltas are a preview: with the LLM answerer the final Answer may differ from their
        concatenation (invalid markers removed, or the extractive fallback after a failure).
        """
        s = settings or self.settings
        question = check_question(question, s.max_question_chars)
        ev = self.gather(question, history, s, follow_up)
        if ev.abstain:
            result = abstention(question, ev.ranked[:3])
            yield result.text
            yield result
            return
        fallback = self.extractive(question, ev.used, ev.kind)
        if s.answerer == "llm":
            llm = self._llm(s)
            if llm is None:
                fallback.notes.append("no LLM endpoint is configured (set RAG_LLM_BASE_URL or OPENAI_API_KEY): "
                                      "showing the extractive answer")
            else:
                yield from llm.stream(question, ev.used, history, fallback)
                return
        yield fallback.text
        yield fallback

    def _llm(self, s: Settings):
        if not s.llm_configured:
            return None
        from rag.llm import LLMAnswerer  # the openai client is imported only when used

        if self.llm is None or not self.llm.serves(s):
            self.llm = LLMAnswerer(s)
        return self.llm


def _find_word(haystack: str, needle: str) -> int:
    """Position of `needle` in `haystack` as a whole word (both lower-cased), else -1."""
    start = 0
    while (pos := haystack.find(needle, start)) >= 0:
        before = haystack[pos - 1] if pos else " "
        after = haystack[pos + len(needle)] if pos + len(needle) < len(haystack) else " "
        if not before.isalnum() and not after.isalnum():
            return pos
        start = pos + 1
    return -1


_COMMON_HEADS = {"rethinking", "revisiting", "towards", "survey", "review", "introduction", "overview"}


def _short_names(index: Index) -> dict[str, list[str]]:
    """Lower-cased short names ("convit", "cvt") -> paper ids, from titles "Name: subtitle".
    Names of one common word or under 3 characters are left out: they would match by accident."""
    names: dict[str, list[str]] = {}
    for pid, paper in index.papers.items():
        head, sep, _ = paper.title.partition(":")
        head = head.strip()
        if not sep or len(head) < 3 or len(head) > 40 or len(head.split()) > 4:
            continue
        if head.islower() or head.casefold() in _COMMON_HEADS:
            continue  # a plain word such as "Rethinking" names nothing
        names.setdefault(head.casefold(), []).append(pid)
    return names


def build_pipeline(settings: Settings, *, store: Store | None = None, embedder: Embedder | None = None,
                   llm=None) -> Pipeline:
    """Open the existing index for `settings`. Raises StoreError when there is none yet."""
    if store is None:
        store = Store(open_client(settings), settings.embed_model, create=False)
    if store.papers.count() == 0:
        raise StoreError(f"the index at {settings.data_dir if not settings.uses_server else 'the Chroma server'} "
                         "is empty; run `rag ingest` first")
    embedder = embedder or Embedder(settings.embed_model, settings.embed_batch_size)
    return Pipeline(settings, Index(store, embedder), llm=llm)


__all__ = ["Pipeline", "build_pipeline", "QuestionError", "StoreError"]
