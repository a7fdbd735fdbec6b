"""The one place that wires corpus -> index -> retriever -> answerer from Settings.

`build_pipeline(settings)` opens the store and the embedder and loads the abstention model
(each can be handed in, for tests and benchmarks) and returns a `Pipeline`, whose `retrieve`,
`answer` and `stream` are what the public `rag.answer` / `rag.retrieve`, the CLI, the UI and
the eval call. A question visits each step once:
understand (spelling, kind, names, conversation: `rag.questions`) -> retrieve -> select
(`rag.evidence`, `rag.abstain`) -> answer (extractive or LLM) -> citations. The store is
refreshed once per question, before it is understood. No step's logic lives here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from rag import evidence, questions
from rag.abstain import AbstainModel, features, should_abstain
from rag.conversation import Message
from rag.embedding import Embedder, model_slug
from rag.errors import StoreError
from rag.evidence import Evidence
from rag.extractive import SENTENCE_BATCH, Extractive, abstention, small_talk
from rag.models import Answer, Filters, Source
from rag.names import CorpusNames
from rag.question_model import Kind, QuestionModel
from rag.retrieval import Index, Ranking, SearchParams
from rag.settings import Settings
from rag.spelling import Speller
from rag.store import Store, open_client


def search_params(s: Settings) -> SearchParams:
    """The retrieval options of `s`."""
    return SearchParams(mode=s.retrieval_mode, candidates=s.candidate_chunks, fusion=s.fusion, rrf_k=s.rrf_k,
                        feedback_papers=s.feedback_papers, feedback_weight=s.feedback_weight,
                        feedback_terms=s.feedback_terms, dense_weight=s.fusion_weight,
                        dense_full=s.dense_full_match)


class Pipeline:
    """Retrieval and answering over one opened index."""

    def __init__(self, settings: Settings, index: Index, abstainer: AbstainModel, llm=None,
                 question_model: QuestionModel | None = None):
        self.settings = settings
        self.index = index
        self.abstainer = abstainer
        self.llm = llm  # an rag.llm.LLMAnswerer, built per endpoint when first asked for
        self.question_model = question_model or QuestionModel.packaged()
        self._reader = None  # (endpoint key, rag.understand_llm.LLMUnderstanding), built when first asked for
        # The index reloads itself when another process ingests or rebuilds; these read its
        # current tables through it, and the name table and the speller (whose caches hold
        # the index's counts) are rebuilt when its version moves.
        self.extractive = Extractive(index.sentences, lambda term: self.index.idf(term),
                                     embed=lambda texts: self.index.embedder.embed(texts, batch_size=SENTENCE_BATCH))
        self._names_version = -1
        self._names: CorpusNames | None = None
        self._speller: tuple[int, Speller] | None = None

    @property
    def names(self) -> CorpusNames:
        """Which papers a question names, looked up in the lexical index (any corpus size)."""
        if self._names is None or self._names_version != self.index.version:
            self._names = CorpusNames(self.index.lexical_index, self.index.get_papers)
            self._names_version = self.index.version
        return self._names

    @property
    def speller(self) -> Speller:
        """Typo correction against the index's current words: a word a later ingest brought in
        is no longer corrected away, nor a compound it now holds as a phrase left closed."""
        if self._speller is None or self._speller[0] != self.index.version:
            lexical = self.index.lexical_index
            # Frame words ("pls", "u") are how people ask, never typos of the corpus's words.
            self._speller = (self.index.version, Speller(
                lexical.doc_freq, self.question_model.frame,
                phrase_count=lambda pair: lexical.count_papers("words", list(pair))))
        return self._speller[1]

    def retrieve(self, question: str, k: int = 10, settings: Settings | None = None,
                 filters: Filters | None = None) -> list[Source]:
        """The `k` best papers for `question`, one entry per paper, best first; only papers
        whose metadata passes `filters`."""
        s = settings or self.settings
        text = self.speller.correct(questions.check_question(question, s.max_question_chars))
        return self.index.search(self.question_model.topic(text), search_params(s), filters=filters).sources[:k]

    def search(self, query: questions.Query, s: Settings, filters: Filters | None = None) -> Ranking:
        params = search_params(s)
        if not query.kind.topical:
            # Pseudo-relevance feedback is a recall device: it pulls in papers that describe the
            # topic in other words, which a "which papers ..." question wants. A question after
            # one fact wants the one paper it describes, and feedback's query, partly the top
            # papers' own words, can lift a paper that merely resembles them above it.
            params = replace(params, feedback_papers=0)
        return self.index.search(query.searched, params, restrict=query.restrict, filters=filters)

    def understand(self, question: str, history: list[Message] | None = None,
                   follow_up: bool | None = None, settings: Settings | None = None) -> questions.Query:
        """What a checked question asks: typos corrected against the index's vocabulary, then
        its kind, names and references to the conversation (`rag.questions.analyse`); with
        `understanding="llm"` and an endpoint, the LLM's reading of the kind, a standalone
        wording of a follow-up and a year range (rag/understand_llm.py)."""
        s = settings or self.settings
        query = questions.analyse(self.speller.correct(question), history, self.names, follow_up,
                                  self.question_model)
        if s.understanding != "llm" or not s.llm_configured:
            return query
        from rag.understand_llm import LLMUnderstanding  # the openai client is imported only when used

        key = (s.llm_base_url, s.llm_model, s.llm_timeout, s.llm_api_key)
        if self._reader is None or self._reader[0] != key:  # one client per endpoint, not per question
            self._reader = (key, LLMUnderstanding(s))
        reading = self._reader[1].read(question, history)
        if reading is None:
            return query
        kind = questions.fit_kind(reading.kind, len(query.named) + len(query.restrict or ()))
        searched = query.searched if query.restrict is not None else self.question_model.topic(reading.standalone)
        return replace(query, kind=kind, searched=searched, years=reading.years)

    def gather(self, question: str, history: list[Message] | None, s: Settings,
               follow_up: bool | None = None, filters: Filters | None = None,
               query: questions.Query | None = None) -> Evidence:
        """Understand (unless `query` is given), retrieve, choose the papers, and decide
        whether to abstain. Refreshes the store first only when it understands the question
        itself: `stream` refreshes once, before understanding."""
        if query is None:
            self.index.refresh()  # papers another process ingested since are answerable now
            query = self.understand(question, history, follow_up, s)
        if query.years is not None and (filters is None or filters.year is None):
            filters = replace(filters or Filters(), year=query.years)  # "papers since 2021", read by the LLM
        if query.restrict is not None:
            # A paper the conversation cites may have been removed since: it is no evidence now.
            query = replace(query, restrict=tuple(pid for pid in query.restrict if pid in self.index.papers))
        query, ranking = evidence.focus(query, self.search(query, s, filters))
        used = evidence.choose(query, ranking, s, self.index.paper,
                               naming=lambda words: list(self.index.lexical(words, evidence.SUPERLATIVE_POOL,
                                                                            filters=filters)))
        if query.restrict is not None:
            abstain = not used
        elif query.kind == Kind.COMPARE:
            abstain = False  # the papers are named: the corpus covers them by construction
        else:
            # Coverage is judged on the topic, without the asking-for-papers scaffolding: "which
            # papers try to ... automatically" spends IDF mass on words no topic is about.
            abstain = should_abstain(query.searched, ranking.first, self.abstainer, self.index.idf, s.retrieval_mode,
                                     s.abstain_threshold)
        ranked = evidence.named_first(query, ranking.sources, self.index.paper)
        return Evidence(query, evidence.shape(query, used), ranked, ranking.first, used, abstain)

    def abstain_features(self, question: str, s: Settings | None = None) -> dict[str, float]:
        """The abstention model's features for a question asked on its own (eval.calibrate)."""
        query = self.understand(question, None, False)
        return features(query.searched, self.search(query, s or self.settings).first, self.index.idf,
                        self.index.idf.__contains__)

    def answer(self, question: str, history: list[Message] | None = None, settings: Settings | None = None,
               follow_up: bool | None = None, filters: Filters | None = None,
               trace: list[Evidence] | None = None) -> Answer:
        """A grounded answer; see `rag.answer` for the contract. `trace`, when given, receives
        the Evidence the answer was built from (the eval scores that ranking)."""
        final = None
        for event in self.stream(question, history, settings, follow_up, filters, trace):
            if isinstance(event, Answer):
                final = event
        assert final is not None  # stream always ends with the Answer
        return final

    def stream(self, question: str, history: list[Message] | None = None, settings: Settings | None = None,
               follow_up: bool | None = None, filters: Filters | None = None,
               trace: list[Evidence] | None = None) -> Iterator[str | Answer]:
        """Text deltas as they are produced, then the final, validated `Answer`.

        Deltas are a preview: with the LLM answerer the final Answer may differ from their
        concatenation (invalid markers removed, or the extractive fallback after a failure).
        """
        s = settings or self.settings
        question = questions.check_question(question, s.max_question_chars)
        self.index.refresh()
        if not self.index.matches(filters):
            text = f"No paper in the index matches the filter ({filters.describe()})."
            yield text
            yield Answer(question=question, text=text, abstained=True,
                         notes=[f"no paper matches the filter: {filters.describe()}"])
            return
        query = self.understand(question, history, follow_up, s)
        if query.kind == Kind.CHITCHAT and not query.named and not query.follow_up:
            reply = small_talk(question)
            yield reply.text
            yield reply
            return
        ev = self.gather(question, history, s, follow_up, filters, query=query)
        if trace is not None:
            trace.append(ev)
        if ev.abstain:
            result = abstention(question, ev.ranked[:3], query.kind)
            yield result.text
            yield result
            return
        def extractive() -> Answer:
            return self.extractive(query.asked, ev.used, ev.kind, shown=query.shown, single=query.single,
                                   asked=question)

        if s.answerer == "llm":
            llm = self._llm(s)
            if llm is not None:
                yield from llm.stream(question, ev.used, history, extractive)  # built only if the LLM fails
                return
        answer = extractive()
        if s.answerer == "llm":
            answer.notes.append("no LLM endpoint is configured (set RAG_LLM_BASE_URL or OPENAI_API_KEY): "
                                "showing the extractive answer")
        yield answer.text
        yield answer

    def _llm(self, s: Settings):
        if not s.llm_configured:
            return None
        from rag.llm import LLMAnswerer  # the openai client is imported only when used

        if self.llm is None or not self.llm.serves(s):
            self.llm = LLMAnswerer(s)
        return self.llm


def build_pipeline(settings: Settings, *, store: Store | None = None, embedder: Embedder | None = None,
                   abstainer: AbstainModel | None = None, llm=None,
                   question_model: QuestionModel | None = None) -> Pipeline:
    """Open the existing index for `settings`. Raises StoreError when there is none yet."""
    if store is None:
        store = Store(open_client(settings, create=False), settings.embed_model, create=False)
    if store.papers.count() == 0:
        raise StoreError(f"the index at {settings.data_dir if not settings.uses_server else 'the Chroma server'} "
                         "is empty; run `rag ingest` first")
    abstainer = abstainer or AbstainModel.for_embedder(model_slug(settings.embed_model))
    embedder = embedder or Embedder.from_settings(settings)  # sets torch's threads: settings.embed_threads
    return Pipeline(settings, Index(store, embedder), abstainer, llm=llm, question_model=question_model)


__all__ = ["Pipeline", "build_pipeline", "search_params"]
