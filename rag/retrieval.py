"""Hybrid retrieval: dense search in Chroma plus BM25 over the same chunks, fused per paper.

`Index` is the query-time view of a store. Opening one reads no per-paper data, so it costs
the same at 500 papers or 2.5 million: the vector side is Chroma's, the lexical side a
persistent tantivy index (`rag.lexical`), corpus statistics (`idf`) come from that index,
and paper records and their sentences are fetched by id when an answer needs them, through
a small cache (`paper`, `get_papers`, the `papers` mapping). It stays current
(`Index.refresh`): when another process commits to or rebuilds the store, the lexical
reader reloads (with a Chroma server: after catching up with the ingest log) and the cache
is dropped.
`Index.search` returns every candidate paper with its dense and BM25 evidence and a fused
score; `select` then cuts that ranking where the evidence falls off, so a broad question can
keep ten papers and a narrow one two. `filters` (`rag.models.Filters`) limit both retrievers
inside their searches. In each pass the Chroma query runs in a worker thread beside the BM25
search; the feedback papers' vectors are read by the chunk ids the lexical index holds.

Fusion ("relative score fusion"): each retriever's per-paper best-chunk score is min-max
normalised over its candidates, and the fused score is their mean (a paper one retriever did
not return contributes 0 for it). Unlike reciprocal rank fusion (available as `fusion="rrf"`
for comparison) this keeps the *size* of score gaps, which is what a cut-off needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
from cachetools import LRUCache
from chromadb.errors import ChromaError, NotFoundError

from rag.embedding import Embedder
from rag.errors import StoreError
from rag.lexical import LexicalIndex, chroma_where
from rag.lexical_store import open_lexical, sync_from_log
from rag.models import Filters, Paper, Source
from rag.store import Store, paper_from_record
from rag.store_health import store_error
from rag.text import Idf, query_terms, sentences, terms

PAPER_CACHE = 4096  # paper records kept in memory per index
SEARCH_THREADS = 8  # worker threads for the steps of searches that run beside others (`_concurrently`)

# HNSW search is approximate even with the wide search beam of rag.store: asked for the 100
# nearest of the bundled corpus's 866 chunks, 2-3 of 8 questions missed one of the exact 100,
# and which one depended on how that build's graph happened to come out. Two builds of the
# same corpus then ranked "Which papers use CIFAR-100?" differently (a paper in or out of the
# list; a follow-up probe that CI runs moved 0.741 -> 0.676). Asking for every chunk makes
# hnswlib's beam as wide as the graph: exact, in order, on every build (8 of 8). It costs
# about 2.4 ms more per query at 866 chunks, 5.7 ms at 2,000 and 16.5 ms at 5,000 (768-d, two
# cores); above this many chunks the search stays approximate.
EXACT_CHUNKS = 5000


@dataclass(frozen=True)
class SearchParams:
    mode: str = "hybrid"  # "hybrid" | "dense" | "bm25"
    candidates: int = 100  # chunks per retriever
    fusion: str = "relative"  # "relative" | "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5  # relative fusion: the dense share, the rest BM25's (Settings.fusion_weight)
    dense_full: float = 0.0  # relative fusion: the cosine that counts as a full dense match (Settings.dense_full_match)
    feedback_papers: int = 0  # pseudo-relevance feedback: top papers of a first pass (0: off)
    feedback_weight: float = 0.5  # Rocchio weight of their mean vector
    feedback_terms: int = 0  # expansion terms taken from their abstracts for BM25


@dataclass(frozen=True)
class Ranking:
    """Candidate papers best first (`sources`), and the first pass before pseudo-relevance
    feedback (`first`), whose raw scores say how well the question itself matched."""

    sources: list[Source]
    first: list[Source]


class Papers(Mapping):
    """The index's paper records as a read-only mapping, fetched from the store by id and
    cached (`PAPER_CACHE` records). Lookups cost one store read on a miss; iterating or
    `len()` pages through or counts the store, which is fine for tools and tests but is not
    what a query does."""

    def __init__(self, index: Index):
        self._index = index

    def __getitem__(self, paper_id: str) -> Paper:
        paper = self._index.get_papers([paper_id]).get(paper_id)
        if paper is None:
            raise KeyError(paper_id)
        return paper

    def __contains__(self, paper_id: object) -> bool:
        return isinstance(paper_id, str) and paper_id in self._index.get_papers([paper_id])

    def __iter__(self) -> Iterator[str]:
        for pid, _ in self._pages(with_papers=False):
            yield pid

    def items(self) -> Iterator[tuple[str, Paper]]:  # type: ignore[override]
        """Every (id, paper), read a page at a time (not one read per paper)."""
        yield from self._pages(with_papers=True)

    def values(self) -> Iterator[Paper]:  # type: ignore[override]
        for _, paper in self.items():
            yield paper

    def _pages(self, with_papers: bool, page: int = 5000) -> Iterator[tuple[str, Paper | None]]:
        offset = 0
        while True:
            if with_papers:
                rows = self._index.store.records(limit=page, offset=offset)
                ids = [pid for pid, _ in rows]
                yield from ((pid, paper_from_record(pid, fields)) for pid, fields in rows)
            else:
                ids = self._index.store.papers.get(include=[], limit=page, offset=offset)["ids"]
                yield from ((pid, None) for pid in ids)
            if len(ids) < page:
                return
            offset += page

    def __len__(self) -> int:
        return len(self._index)


class Index:
    """Everything retrieval and answering need at query time, opened from a store and kept
    current: every search first checks (one small metadata read, about a millisecond) whether
    an ingest committed or a rebuild swapped the store since, and if so refreshes (`refresh`).
    `version` counts the loads, so a caller that derives tables from the papers can tell
    when to rebuild them."""

    def __init__(self, store: Store, embedder: Embedder, refresh_interval: float = 0.0):
        self.embedder = embedder
        self.refresh_interval = refresh_interval  # seconds between store checks in search()
        self.version = 0
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._checked = 0.0
        self.papers = Papers(self)
        # Runs steps of a search beside each other (`_concurrently`); threads start as needed.
        self._worker = ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="rag-search")
        self._load(store)

    def _load(self, store: Store, lexical: LexicalIndex | None = None) -> None:
        """Open the store's lexical side and reset the caches; swapped in together (a search
        running in another thread keeps the objects it started with)."""
        seen = store.pointer()
        try:
            if lexical is None:
                lexical = open_lexical(store)
            elif store.is_server:
                sync_from_log(store, lexical)
            lexical.reload()
        except StoreError:
            raise
        except Exception as err:
            raise store_error(err, store.location, store._path()) from err
        self.store, self._seen, self.lexical_index = store, seen, lexical
        # Dropped on every load: a replaced abstract's old sentences can never be quoted after it.
        # Shared by the threads answering at once (the UI's queue): read and written under
        # `_cache_lock`; the store reads of a miss run outside it.
        self._cache: LRUCache[str, Paper] = LRUCache(PAPER_CACHE)
        self._sentences: LRUCache[str, list[str]] = LRUCache(PAPER_CACHE)
        self._count: int | None = None
        self.idf = Idf(lexical.doc_freq, lexical.num_docs)  # over the indexed chunks
        self.version += 1

    def refresh(self, force: bool = False) -> bool:
        """Reload if the store changed since the last load (or if `force`); True when it
        reloaded. Cheap: reopens the collections (a rebuild may have dropped them) and the
        lexical reader of the live generation, and empties the paper cache."""
        with self._lock:
            if not force:
                try:
                    if not self.store.changed(self._seen):
                        return False
                except StoreError:
                    raise
                except Exception:  # the collections went away under us: reopen below
                    pass
            store = self.store.reopen()
            same = (store.generation == self.store.generation and store._path() == self.store._path()
                    and not self.lexical_index.replaced)
            self._load(store, self.lexical_index if same else None)
            return True

    def _maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked >= self.refresh_interval:
            self._checked = now
            self.refresh()

    def close(self) -> None:
        """Stop the search threads and release this index's store client (Chroma counts its
        users of one store and stops it with the last). Idempotent."""
        self._worker.shutdown(wait=True)
        close = getattr(self.store.client, "close", None)
        if close is not None:
            close()

    def __len__(self) -> int:
        """Papers in the store (counted once per load)."""
        if self._count is None:
            self._count = self.store.papers.count()
        return self._count

    @property
    def chunk_count(self) -> int:
        return self.lexical_index.num_docs

    # --- paper records, by id ----------------------------------------------------------------
    def get_papers(self, paper_ids: Collection[str]) -> dict[str, Paper]:
        """The stored records of those of `paper_ids` that are committed papers, one store
        read for the ones not cached. A chunk whose paper has no record (an ingest that died
        before its commit marker) is a phantom: it simply finds no paper here."""
        cache, lock = self._cache, self._cache_lock
        with lock:
            out = {pid: paper for pid in paper_ids if (paper := cache.get(pid)) is not None}
        missing = [pid for pid in dict.fromkeys(paper_ids) if pid not in out]
        if missing:
            found = {pid: paper_from_record(pid, fields) for pid, fields in self.store.records(missing)}
            with lock:
                cache.update(found)
            out.update(found)
        return out

    def paper(self, paper_id: str) -> Paper | None:
        return self.get_papers([paper_id]).get(paper_id)

    def sentences(self, paper_id: str) -> list[str]:
        """The abstract's sentences, split once per load and cached."""
        cache, lock = self._sentences, self._cache_lock
        with lock:
            cached = cache.get(paper_id)
        if cached is None:
            cached = sentences(self.papers[paper_id].abstract)
            with lock:
                cache[paper_id] = cached
        return cached

    def matches(self, filters: Filters | None) -> bool:
        """Whether any indexed chunk passes `filters`."""
        return filters is None or filters.empty or self.lexical_index.count_matching(filters) > 0

    # --- the two retrievers, each -> {paper_id: best chunk score} -----------------------
    def dense(self, query_vec: np.ndarray, n: int, restrict: Collection[str] | None = None,
              filters: Filters | None = None) -> dict[str, float]:
        if restrict is not None and not restrict:
            return {}
        clauses = [c for c in (chroma_where(filters),
                               {"paper_id": {"$in": sorted(restrict)}} if restrict is not None else None) if c]
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        # Distances only: a chunk id is "<paper_id>:<hash>" (chunking.chunk_id), so fetching
        # metadata would only repeat what the id says (measured: 5.9 -> 1.9 ms per query).
        total = self.chunk_count or self.store.chunks.count()
        if total == 0:
            return {}
        # Up to EXACT_CHUNKS the query asks for every chunk, which widens HNSW's beam to the
        # whole graph: exact, and the same for every build of the index (see EXACT_CHUNKS).
        res = self.store.chunks.query(
            query_embeddings=[query_vec], n_results=total if total <= EXACT_CHUNKS else min(n, total),
            where=where, include=["distances"],
        )
        best: dict[str, float] = {}
        for cid, dist in list(zip(res["ids"][0], res["distances"][0]))[:n]:
            pid = cid.rsplit(":", 1)[0]
            best[pid] = max(best.get(pid, -1.0), 1.0 - float(dist))  # cosine space
        return best

    def expansion_terms(self, paper_ids: list[str], exclude: set[str], n: int) -> list[str]:
        """The `n` terms with the highest summed tf-idf over the papers' abstracts."""
        weight: dict[str, float] = {}
        papers = self.get_papers(paper_ids)
        for pid in paper_ids:
            for t in terms(papers[pid].abstract) if pid in papers else ():
                if t not in exclude:
                    weight[t] = weight.get(t, 0.0) + self.idf(t)
        return [t for t, _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

    def lexical(self, q: list[str], n: int, restrict: Collection[str] | None = None,
                filters: Filters | None = None) -> dict[str, float]:
        best: dict[str, float] = {}
        for _, pid, score in self.lexical_index.search(q, n, filters, restrict):
            if score > 0:
                best[pid] = max(best.get(pid, 0.0), score)
        return best

    def search(self, query: str, params: SearchParams, restrict: Collection[str] | None = None,
               query_vec: np.ndarray | None = None, filters: Filters | None = None) -> Ranking:
        """All candidate papers for `query`, best first, and the first pass before feedback.
        `restrict` limits the search to those paper ids (follow-up questions), `filters` to
        the papers whose metadata passes them (inside both retrievers). `query` is searched
        as given: the caller strips what names no topic (`rag.questions.Query.searched`);
        a `query_vec` handed in must be the embedding of that text."""
        self._maybe_refresh()
        try:
            return self._search(query, params, restrict, query_vec, filters)
        except NotFoundError:  # a rebuild dropped the collections between check and query
            self.refresh(force=True)
            return self._search(query, params, restrict, query_vec, filters)
        except StoreError:
            raise
        except ChromaError as err:
            raise store_error(err, self.store.location, self.store._path()) from err

    def _search(self, query: str, params: SearchParams, restrict: Collection[str] | None,
                query_vec: np.ndarray | None, filters: Filters | None = None) -> Ranking:
        use_dense, use_bm25 = params.mode in ("hybrid", "dense"), params.mode in ("hybrid", "bm25")
        q_terms = query_terms(query)
        if use_dense and query_vec is None:
            query_vec = self.embedder.embed_query(query)
        dense, lexical = self._concurrently(
            (lambda: self.dense(query_vec, params.candidates, restrict, filters)) if use_dense else None,
            (lambda: self.lexical(q_terms, params.candidates, restrict, filters)) if use_bm25 else None)
        dense, lexical = dense or {}, lexical or {}
        ranked = _ranked(fuse([dense, lexical], params))
        ids = [pid for pid, _ in ranked]
        top = self._committed(ids, params.feedback_papers) if params.feedback_papers and restrict is None else []
        if not top:
            first = self._sources(ranked, dense, lexical, self.get_papers(ids))
            return Ranking(first, first)

        # Pseudo-relevance feedback: the first pass's best papers describe the topic in the
        # corpus's own words, which a paraphrased question lacks. Dense: Rocchio, moving the
        # query towards their mean vector; BM25: add their most distinctive terms.
        def moved_dense() -> dict[str, float]:
            means = self.feedback_vectors(top)
            found = [means[pid] for pid in top if pid in means]
            if not found:  # removed since the first pass (`rag remove` ran meanwhile): no feedback
                return dense
            moved = query_vec + params.feedback_weight * np.stack(found).mean(axis=0)
            return self.dense(moved / np.linalg.norm(moved), params.candidates, restrict, filters)

        def expanded_lexical() -> dict[str, float]:
            extra = self.expansion_terms(top, set(q_terms), params.feedback_terms)
            return self.lexical(expanded_query(q_terms, extra), params.candidates, restrict, filters)

        moved, expanded = self._concurrently(moved_dense if use_dense else None,
                                             expanded_lexical if use_bm25 and params.feedback_terms else None)
        second = _ranked(fuse([moved if moved is not None else dense, expanded if expanded is not None else lexical],
                              params))
        papers = self.get_papers(ids + [pid for pid, _ in second])  # both passes' records in one read
        first = self._sources(ranked, dense, lexical, papers)
        dense, lexical = (dense if moved is None else moved), (lexical if expanded is None else expanded)
        return Ranking(self._sources(second, dense, lexical, papers), first)

    def feedback_vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        """paper id -> the mean of its chunk vectors, read by the chunk ids the lexical index
        holds (`Store.paper_vectors`: a filtered read scans Chroma's metadata)."""
        chunk_ids = [cid for cids in self.lexical_index.chunks_of(paper_ids).values() for cid in cids]
        return self.store.paper_vectors(paper_ids, chunk_ids)

    def _committed(self, ids: list[str], n: int) -> list[str]:
        """The first `n` of `ids` that are committed papers (a phantom chunk's paper has no
        record), reading records a few at a time in rank order."""
        found: list[str] = []
        for start in range(0, len(ids), 2 * n):
            window = ids[start:start + 2 * n]
            papers = self.get_papers(window)
            found += [pid for pid in window if pid in papers]
            if len(found) >= n:
                break
        return found[:n]

    def _concurrently(self, *tasks: Callable[[], Any] | None) -> list[Any]:
        """Each task's result, None for a task that is None. The last task runs on this
        thread, the others in worker threads: a pass's Chroma query (with a server, mostly
        waiting on another process, and a small answer to parse) beside its BM25 search
        (tantivy and the rescoring in Python). Only steps that hold the GIL little belong in
        a worker: reading 150 paper records there (many socket reads, JSON for each) while
        BM25 ran on this thread made that read twice as slow and retrieve() slower (300k
        papers). The question is embedded before, on this thread, for the same reason."""
        present = [i for i, task in enumerate(tasks) if task is not None]
        results: list[Any] = [None] * len(tasks)
        if not present:
            return results
        pending = [(i, self._worker.submit(tasks[i])) for i in present[:-1]]
        try:
            results[present[-1]] = tasks[present[-1]]()
        finally:
            wait([future for _, future in pending])  # none left running, whatever failed
        for i, future in pending:
            results[i] = future.result()
        return results

    @staticmethod
    def _sources(ranked, dense, lexical, papers: dict[str, Paper]) -> list[Source]:
        # Papers without a record (phantom chunks of an uncommitted paper) are left out.
        return [Source(paper=papers[pid], score=round(score, 6), dense=dense.get(pid), bm25=lexical.get(pid))
                for pid, score in ranked if pid in papers]


def expanded_query(q_terms: list[str], extra: list[str]) -> list[str]:
    """The feedback pass's BM25 query: the question's terms, repeated so that they count about
    half as many as the expansion terms (rounded, at least once), then the expansion terms
    (BM25 weighs a term by how often the query holds it). Added once each, 8 expansion terms from three papers
    outweighed a one-word question 8 to 1: "Which papers use MSCOCO?" drifted to the topics
    of the first pass's top papers and lost the papers that name MSCOCO. A longer, paraphrased
    question keeps the expansion's full say (docs/quality.md, "Names").

    `expanded_query(["mscoco"], ["caption"] * 8)` -> `["mscoco"] * 4 + ["caption"] * 8`;
    `expanded_query(["a", "b", "c", "d"], ["x"] * 8)` -> `["a", "b", "c", "d"] + ["x"] * 8`.
    """
    repeat = max(1, round(len(extra) / (2 * len(q_terms)))) if q_terms else 1
    return q_terms * repeat + extra


def _ranked(fused: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def _minmax(scores: dict[str, float], top: float = 0.0) -> dict[str, float]:
    """Scores scaled to 0..1 between the run's lowest and its highest, or `top` when that is
    higher: `_minmax({"a": 0.3, "b": 0.1}, top=0.5)` -> `{"a": 0.5, "b": 0.0}`."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    hi = max(hi, top) if top else hi
    if hi - lo < 1e-9:
        return {k: 1.0 for k in scores}
    return {k: (v - lo) / (hi - lo) for k, v in scores.items()}


def fuse(runs: list[dict[str, float]], params: SearchParams) -> dict[str, float]:
    """The dense and BM25 runs fused as `params.fusion` says."""
    if params.fusion == "rrf":
        return rrf(runs, params.rrf_k)
    return relative_fusion(runs, params.dense_weight, params.dense_full)


def relative_fusion(runs: list[dict[str, float]], dense_weight: float = 0.5,
                    dense_full: float = 0.0) -> dict[str, float]:
    """Weighted mean of min-max-normalised scores: `dense_weight` for the first run (dense),
    the rest for the second (BM25); when only one run returned anything it is used alone.
    A weight per model: a strong embedder's dense side deserves more than an equal share.

    `dense_full` is the cosine that counts as a full dense match. Min-max alone scales the best
    dense score to 1 however weak it is, and a question whose key words the embedder does not
    know ("Which papers use VGG?", "How does MoCo differ from SimCLR?") gets a dense run of
    near-random papers at cosine 0.1-0.2 that outweighs the papers BM25 finds by those very
    words. Below `dense_full` the dense run is scaled against it instead, so its weight follows
    its evidence (docs/quality.md, "Names").

    `relative_fusion([{"a": 0.9, "b": 0.5}, {"a": 3.0, "c": 1.0}])` -> `{"a": 1.0, "b": 0.0, "c": 0.0}`;
    with `dense_weight=0.8` and runs `[{"a": 1, "b": 0}, {"a": 0, "b": 1}]` -> `{"a": 0.8, "b": 0.2}`.
    """
    weighted = [(_minmax(r, top), w) for r, w, top in zip(runs, (dense_weight, 1.0 - dense_weight), (dense_full, 0.0))
                if r]
    if not weighted:
        return {}
    total = sum(w for _, w in weighted) or 1.0
    keys = set().union(*(r for r, _ in weighted))
    return {k: sum(w * r.get(k, 0.0) for r, w in weighted) / total for k in keys}


def rrf(runs: list[dict[str, float]], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the runs, ranks from 1.

    `rrf([{"a": 0.9, "b": 0.5}, {"b": 2.0}], k=60)` -> `{"a": 1/61, "b": 1/62 + 1/61}`
    """
    out: dict[str, float] = {}
    for run in runs:
        for rank, (key, _) in enumerate(sorted(run.items(), key=lambda kv: (-kv[1], kv[0])), start=1):
            out[key] = out.get(key, 0.0) + 1.0 / (k + rank)
    return out


def select(ranked: list[Source], relative_cutoff: float, min_papers: int, max_papers: int) -> list[Source]:
    """The papers an answer should use: those whose fused score is at least `relative_cutoff`
    of the best one, at least `min_papers` and at most `max_papers`.

    With scores [1.0, 0.9, 0.8, 0.3] and cut-off 0.6 -> the first three.
    """
    if not ranked:
        return []
    top = ranked[0].score
    kept = [s for s in ranked[:max_papers] if s.score >= relative_cutoff * top]
    return kept if len(kept) >= min_papers else ranked[:min_papers]
