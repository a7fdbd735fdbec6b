"""`Assistant`: the one object that owns an opened index, its embedder and its models.

    import rag
    with rag.open() as a:                      # opens the index now (StoreError if none)
        result = a.answer("Which papers bridge CNNs and ViTs?")
        papers = a.retrieve("vision transformers with convolutions", k=5)
        a.ingest(["my-papers.bib"])            # answerable by the next question
        a.remove("my-papers.bib")
        a.stats().papers

An Assistant is built from one `Settings` (plus keyword overrides of its fields) and opens
the pipeline (`rag.pipeline.build_pipeline`) on first use, so `Assistant(s).ingest(paths)`
works on an empty data directory. Per-call options (`max_papers=`, `answerer=`, ...) never
reopen anything: they go to the pipeline as a call's Settings. It is safe to share between
threads: queries run concurrently (the pipeline's index is built for that), while opening,
ingesting, removing and closing take a lock. `close()` (or leaving the `with` block) stops
its search threads and releases the store; using a closed Assistant raises StoreError.

What this module does not do: retrieval or answering logic (rag.pipeline and the steps it
wires), or parsing of user input (the edges: rag.cli, ui/).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import StoreError
from rag.models import Answer, Filters, Source
from rag.settings import Settings

# The Settings fields the pipeline reads from each call's Settings (retrieval, answering, the
# LLM endpoint, which `Pipeline._llm` rebuilds its client for), or never at query time
# (ingest and UI options). Every other field decides what an Assistant opens (store, embedder,
# abstention model), so two Settings that agree on those can share one opened Assistant:
# `rag.default_assistant` keys its instances by them. A field added to Settings is in the key
# until it is listed here: an unneeded second Assistant costs a model load, a missing key
# field silently answers with the first call's resources.
PER_CALL = frozenset({
    "retrieval_mode", "candidate_chunks", "fusion", "rrf_k", "fusion_weight", "dense_full_match",
    "feedback_papers", "feedback_weight", "feedback_terms", "max_papers", "min_papers", "relative_cutoff",
    "abstain_threshold", "answerer", "understanding", "max_question_chars", "support_threshold",
    "llm_base_url", "llm_model", "llm_api_key", "llm_timeout", "llm_max_retries", "llm_max_tokens", "llm_stream",
    "corpus_paths", "chunk_size", "chunk_overlap",  # ingest: `Assistant.ingest` reads its own settings
    "ui_host", "ui_port", "ui_username", "ui_password", "ui_max_request_bytes", "ui_max_upload_bytes",
})


def opened_by(settings: Settings) -> tuple:
    """The values of every field not in `PER_CALL`: what identifies the resources `settings` opens."""
    return tuple((name, repr(getattr(settings, name))) for name in type(settings).model_fields if name not in PER_CALL)


@dataclass(frozen=True)
class Stats:
    """What an index holds (`Assistant.stats`, `rag stats`, the MCP `stats` tool)."""

    papers: int
    chunks: int
    embedding_model: str
    store: str
    sources: dict[str, int] = field(default_factory=dict)
    collections: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"papers": self.papers, "chunks": self.chunks, "embedding_model": self.embedding_model,
                "collections": list(self.collections), "store": self.store, "sources": dict(self.sources)}


class Assistant:
    """Grounded, cited answers over one index; see the module docstring."""

    def __init__(self, settings: Settings | None = None, *, pipeline=None, **overrides):
        base = settings if settings is not None else Settings()
        self.settings = base.with_overrides(overrides) if overrides else base
        self._pipeline = pipeline  # a rag.pipeline.Pipeline, handed in (tests, benchmarks) or opened on first use
        self._owns = pipeline is None  # close() releases only what this Assistant opened
        self._lock = threading.RLock()
        self._closed = False

    # --- lifetime ------------------------------------------------------------------------
    @property
    def pipeline(self):
        """The opened pipeline (opened now if it is not yet); StoreError when there is no
        index or the Assistant is closed."""
        pipe = self._pipeline
        if pipe is not None and not self._closed:
            return pipe
        with self._lock:
            if self._closed:
                raise StoreError("this assistant is closed; open a new one with rag.open()")
            if self._pipeline is None:
                from rag.pipeline import build_pipeline

                self._pipeline = build_pipeline(self.settings)
            return self._pipeline

    def open(self) -> Assistant:
        """Open the index now rather than at the first question; returns self."""
        _ = self.pipeline
        return self

    def close(self) -> None:
        """Stop the search threads and release the store. Idempotent."""
        with self._lock:
            self._closed = True
            pipe, self._pipeline = self._pipeline, None
        if pipe is not None and self._owns:
            pipe.index.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- questions -----------------------------------------------------------------------
    def _call(self, options: dict) -> Settings:
        return self.settings.with_overrides(options) if options else self.settings

    def answer(self, question: str, history: list[dict] | None = None, *, follow_up: bool | None = None,
               filters: Filters | None = None, **options) -> Answer:
        """A grounded answer (`rag.answer` documents the contract); `options` are Settings
        fields for this call only, e.g. `max_papers=3`."""
        s = self._call(options)
        return self.pipeline.answer(question, history, settings=s, follow_up=follow_up, filters=filters)

    def stream(self, question: str, history: list[dict] | None = None, *, follow_up: bool | None = None,
               filters: Filters | None = None, **options) -> Iterator[str | Answer]:
        """Text deltas as they come, then the final Answer."""
        s = self._call(options)
        return self.pipeline.stream(question, history, settings=s, follow_up=follow_up, filters=filters)

    def retrieve(self, question: str, k: int = 10, *, filters: Filters | None = None, **options) -> list[Source]:
        """The `k` best papers for `question`, one per paper, best first."""
        s = self._call(options)
        return self.pipeline.retrieve(question, k=k, settings=s, filters=filters)

    # --- the index -----------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, progress: bool = False, batch_papers: int | None = None):
        """Index the papers in `paths` (files or directories; any format `rag ingest` reads)
        under the writer lock; returns the `rag.ingest.IngestReport`. An open index sees
        them at its next question."""
        from rag.ingest import BATCH_PAPERS, ingest
        from rag.store import Store, check_writable, open_client
        from rag.writer_lock import writer_lock

        s = self.settings
        files = [Path(p) for p in paths]
        for p in files:
            if not p.exists():
                raise FileNotFoundError(2, "No such file or directory", str(p))
        with self._lock:
            check_writable(s)
            server = open_client(s) if s.uses_server else None  # the server holds its own lock
            with writer_lock(s, server):
                # A local store is opened under the lock: two first ingests opening a new data
                # directory at once both create Chroma's tables, and one fails.
                client = server or open_client(s)
                report = ingest(files, s, Store(client, s.embed_model), progress=progress,
                                batch_papers=batch_papers or BATCH_PAPERS)
            self._refresh()
        return report

    def remove(self, source: str) -> int:
        """Remove every paper of `source` (a name `stats().sources` lists); returns how many."""
        from rag.sources import remove

        with self._lock:
            removed = remove(self.settings, source)
            self._refresh()
        return removed

    def _refresh(self) -> None:
        if self._pipeline is not None:
            self._pipeline.index.refresh()

    def stats(self) -> Stats:
        """Papers, chunks and sources of the index, read now (without loading the embedder)."""
        from rag.store import Store, open_client, store_location

        s = self.settings
        if self._pipeline is not None and not self._closed:
            self._pipeline.index.refresh()
            store = self._pipeline.index.store
        else:
            store = Store(open_client(s, create=False), s.embed_model, create=False)
        papers, chunks = store.counts()
        where = store_location(s) + (" (read-only: read from a private copy)" if store.read_only_copy else "")
        return Stats(papers, chunks, s.embed_model, where, store.sources(), (store.papers_name, store.chunks_name))


def open(settings: Settings | None = None, **overrides) -> Assistant:  # noqa: A001 - rag.open, as io.open
    """An Assistant with its index opened now: `with rag.open() as a: a.answer(...)`.
    Raises StoreError when there is no index yet (run `rag ingest`, or `Assistant(s).ingest`)."""
    return Assistant(settings, **overrides).open()


__all__ = ["Assistant", "Stats", "open", "opened_by", "PER_CALL"]
