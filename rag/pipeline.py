"""The one place that wires corpus -> index -> retriever -> answerer from Settings.

`build_pipeline(settings)` opens the store and the embedder (each can be handed in, for tests
and benchmarks) and returns a `Pipeline`, whose `retrieve`, `answer` and `stream` are what the
public `rag.answer` / `rag.retrieve`, the CLI, the UI and the eval call. Per-call options come
as a Settings object; the index is opened once and shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.abstain import AbstainModel, features
from rag.embedding import Embedder
from rag.extractive import Extractive, abstention, question_kind
from rag.models import Answer, Source
from rag.questions import (
    Message, QuestionError, check_question, is_follow_up, ordinal, previous_turn, resolve_titles,
)
from rag.retrieval import Index, SearchParams, select
from rag.settings import Settings
from rag.store import Store, StoreError, open_client


@dataclass
class Evidence:
    """What retrieval found for a question: the papers to use, and whether to abstain."""

    question: str  # as searched (a follow-up is searched as itself, restricted)
    kind: str
    ranked: list[Source]
    first: list[Source]  # first-pass ranking, before feedback: the evidence for abstaining
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
        self._tokens = _name_tokens(index)
        self.extractive = Extractive(index.sentences, index.idf)
        self.abstainer = AbstainModel.load()

    # --- retrieval ----------------------------------------------------------------------
    def _params(self, s: Settings) -> SearchParams:
        return SearchParams(mode=s.retrieval_mode, candidates=s.candidate_chunks, fusion=s.fusion, rrf_k=s.rrf_k,
                            feedback_papers=s.feedback_papers, feedback_weight=s.feedback_weight,
                            feedback_terms=s.feedback_terms)

    def retrieve(self, question: str, k: int = 10, settings: Settings | None = None) -> list[Source]:
        """The `k` best papers for `question`, one entry per paper, best first."""
        s = settings or self.settings
        question = check_question(question, s.max_question_chars)
        return self.index.search(question, self._params(s)).sources[:k]

    def named_papers(self, question: str, strong_only: bool = False) -> list[str]:
        """Ids of papers the question names, in the order the names appear in it: by full
        title, by the short name before a title's colon ("ConViT"), or (unless `strong_only`)
        by a method name the paper's title carries or its abstract defines ("dubbed
        ConvNeXt", "(OSNet)")."""
        low = question.casefold()
        mentions: list[tuple[int, list[str]]] = []
        for name, pids in self._names.items():
            if (pos := _find_word(low, name)) >= 0:
                mentions.append((pos, pids))
        for token in set() if strong_only else set(_NAME_TOKEN.findall(question)):
            if (pos := _find_word(low, token.casefold())) >= 0 and token.casefold() in self._tokens:
                mentions.append((pos, self._tokens[token.casefold()]))
        out: list[str] = []
        for _, pids in sorted(mentions, key=lambda m: m[0]):
            out += [pid for pid in pids if pid not in out]
        return out

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
            ranking = self.index.search(question, params, restrict=restrict)
            # Restricted to papers already judged relevant: keep every one the new question matches.
            used = select(ranking.sources, s.relative_cutoff, 1, s.max_papers)
            return Evidence(question, "list" if len(used) > 1 and kind == "fact" else kind, ranking.sources,
                            ranking.first, used, abstain=not used, follow_up=True)
        query = f"{prev_question} {question}" if follow_up and prev_question else question
        ranking = self.index.search(query, params)
        ranked = ranking.sources
        if kind == "compare":
            by_id = {src.paper_id: src for src in ranked}
            pair = [by_id.get(pid) or Source(paper=self.index.papers[pid], score=0.0) for pid in named[:2]]
            return Evidence(query, kind, ranked, ranking.first, pair, abstain=False, follow_up=follow_up)
        used = select(ranked, s.relative_cutoff, s.min_papers, s.max_papers)
        titled = self.named_papers(question, strong_only=True) if kind == "fact" else []
        if titled:
            # The question names its paper by title or short name: answer from it first.
            by_id = {src.paper_id: src for src in ranked}
            lead = [by_id.get(titled[0]) or Source(paper=self.index.papers[titled[0]], score=0.0)]
            used = lead + [src for src in used if src.paper_id != titled[0]]
        return Evidence(query, kind, ranked, ranking.first, used, abstain=self._weak(query, ranking.first, s),
                        follow_up=follow_up)

    def abstain_features(self, question: str, first: list[Source]) -> dict[str, float]:
        return features(question, first, self.index.idf, self.index.idf.__contains__)

    def _weak(self, question: str, first: list[Source], s: Settings) -> bool:
        """Too little evidence to answer: the calibrated model (rag/abstain.py) says the
        corpus does not cover the question. BM25-only runs have no dense score for it, so
        there only "no abstract shares a word with the question" abstains."""
        if not first:
            return True
        if s.retrieval_mode == "bm25":
            return not any(src.bm25 for src in first[:5])
        return self.abstainer.probability(self.abstain_features(question, first)) >= s.abstain_threshold

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
    """Lower-cased names -> paper ids: every full title, and the short name of titles
    "Name: subtitle" ("convit", "cvt"). Short names of one common word or under 3 characters
    are left out: they would match by accident."""
    names: dict[str, list[str]] = {}
    for pid, paper in index.papers.items():
        names.setdefault(paper.title.casefold(), []).append(pid)
        head, sep, _ = paper.title.partition(":")
        head = head.strip()
        if not sep or len(head) < 3 or len(head) > 40 or len(head.split()) > 4:
            continue
        if head.islower() or head.casefold() in _COMMON_HEADS:
            continue  # a plain word such as "Rethinking" names nothing
        names.setdefault(head.casefold(), []).append(pid)
    return names


# Method-name-like tokens: an inner capital (ConvNeXt, SparK, OSNet) or letters with digits.
_NAME_TOKEN = re.compile(r"\b(?=[\w-]*[a-z])(?:[A-Za-z]+[A-Z][\w-]*|[A-Za-z]+-?\d[\w-]*)\b")
# Where an abstract defines a name: "dubbed ConvNeXt", "termed CDD-RED", "network (OSNet)".
_DEFINED = re.compile(r"\b(?:dubbed|named|called|termed|coined|namely)\s+([A-Z][\w-]+)|\(([A-Za-z][\w-]*[A-Z][\w-]*)\)")
MAX_PAPERS_PER_NAME = 2


def _name_tokens(index: Index) -> dict[str, list[str]]:
    """Lower-cased method names -> the (at most two) papers whose title carries them or
    whose abstract defines them; names more papers share name no paper."""
    where: dict[str, list[str]] = {}
    for pid, paper in index.papers.items():
        defined = {a or b for a, b in _DEFINED.findall(paper.abstract)}
        names = set(_NAME_TOKEN.findall(paper.title)) | {t for t in defined if _NAME_TOKEN.fullmatch(t)}
        for token in {t.casefold() for t in names}:
            where.setdefault(token, []).append(pid)
    return {t: pids for t, pids in where.items() if len(pids) <= MAX_PAPERS_PER_NAME}


def build_pipeline(settings: Settings, *, store: Store | None = None, embedder: Embedder | None = None,
                   llm=None) -> Pipeline:
    """Open the existing index for `settings`. Raises StoreError when there is none yet."""
    if store is None:
        store = Store(open_client(settings), settings.embed_model, create=False)
    if store.papers.count() == 0:
        raise StoreError(f"the index at {settings.data_dir if not settings.uses_server else 'the Chroma server'} "
                         "is empty; run `rag ingest` first")
    embedder = embedder or Embedder(settings.embed_model, settings.embed_batch_size, threads=1)
    return Pipeline(settings, Index(store, embedder), llm=llm)


__all__ = ["Pipeline", "build_pipeline", "QuestionError", "StoreError"]
