"""The persistent lexical (BM25) index: tantivy on disk, beside the vector store.

Two tantivy indexes in one directory, both updated per ingest batch and opened in
milliseconds at any size (segments are memory-mapped, nothing is loaded up front):
- `chunks/`: one document per chunk, for BM25. The searched field holds the output of
  `rag.text.terms()` joined by spaces and is split on whitespace, so tantivy sees exactly our
  analyser (Snowball stems, our stop words); a query is an OR of term queries over the same
  terms. Filter fields (year, source, author keys, categories) sit on every chunk, so a
  filter runs inside the search, never after ranking. Corpus statistics (document
  frequencies, the number of chunks) come from here: `doc_freq`, `num_docs`.
- `papers/`: one document per paper for the names lookup (`rag.names.CorpusNames`): the
  normalised title, short name and title head (`key`), the method-like tokens (`method`),
  and the title and abstract's words with positions (`words`) for "how many papers use
  this phrase".

Where it lives (`lexical_dir`): inside an embedded store's directory,
`<data_dir>/chroma/lexical/<model>-g<generation>`, so a rebuild's new generation and a
damaged store's directory swap carry it along. With a Chroma server each query host keeps
its own copy under `<data_dir>/lexical-cache/<host>-<port>/<model>-g<generation>`, kept
current from the ingest log in the server (`rag.store.Store.log_batch`, `sync_from_log`).

Crash safety: the ingest writes a batch's lexical documents after its chunks and before its
paper records (the commit marker). A document of a paper whose record is missing is a
phantom, dropped at query time, and replaced when the ingest is rerun.

A writer is one process at a time (tantivy's own lock file, and `rag.writer_lock` around
every ingest); readers in any number of processes call `reload()` to see the last commit.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import tantivy
from cachetools import LRUCache

from rag.errors import StoreError
from rag.models import Filters, Paper
from rag.text import author_names, words

REBUILD_LEXICAL = "run `rag ingest --rebuild-lexical` to rebuild it from the vector store"
WRITER_HEAP = 128 * 1024 * 1024
RESCORE_DEPTH = 3  # tantivy's hits per chunk wanted, rescored with bm25s' BM25
K1, B = 1.5, 0.75  # bm25s' defaults, which the fusion weight and cut-offs were tuned with
# Chunks whose term counts are kept between searches (per reload): a question's two passes
# rescore mostly the same few hundred chunks, and a hit skips reading and counting the chunk
# (about 14 of a search's 20 microseconds per chunk). About 10 KB each.
RESCORED_CACHE = 2048
SCHEMA_VERSION = "2"  # of the two indexes' fields; another version is rebuilt (rag.lexical_store)
WRITER_WAIT = 60.0  # seconds a writer waits for another process's writer to finish


def author_keys(authors: str | Iterable[str] | None) -> list[str]:
    """What an author filter matches: each author's full name and surname, case-folded.

    `author_keys("Jane Q. Doe, Bob Smith and Li Wei")` ->
    `["jane q. doe", "doe", "bob smith", "smith", "li wei", "wei"]`
    """
    if not authors:
        return []
    names = author_names(authors) if isinstance(authors, str) else list(authors)
    keys: list[str] = []
    for name in names:
        full = " ".join(name.casefold().split())
        if not full:
            continue
        for key in (full, full.split()[-1]):
            if key not in keys:
                keys.append(key)
    return keys


def author_key(author: str) -> str:
    """A user's author filter as a key: `author_key("  Jane  DOE ")` -> `"jane doe"`."""
    return " ".join(author.casefold().split())


def category_keys(categories: str | None) -> list[str]:
    """`category_keys("cs.CV cs.LG")` -> `["cs.cv", "cs.lg"]`."""
    return [c.casefold() for c in (categories or "").split()]


# Chroma metadata key -> the tantivy field holding the same filter values.
_FIELD_NAMES = {"author_keys": "author", "category_keys": "category"}


def filter_metadata(paper: Paper) -> dict:
    """The filter fields every chunk of `paper` carries in Chroma (lists where Chroma's array
    metadata answers `$contains`; absent rather than empty, which Chroma rejects)."""
    meta: dict = {}
    if paper.year is not None:
        meta["year"] = int(paper.year)
    if paper.source:
        meta["source"] = paper.source
    if keys := author_keys(paper.authors):
        meta["author_keys"] = keys
    if keys := category_keys(paper.categories):
        meta["category_keys"] = keys
    return meta


def chroma_where(filters: Filters | None) -> dict | None:
    """The Chroma `where=` clause of `filters` over chunk metadata (`filter_metadata`)."""
    if filters is None or filters.empty:
        return None
    clauses: list[dict] = []
    if filters.year is not None:
        clauses += [{"year": {"$gte": filters.year[0]}}, {"year": {"$lte": filters.year[1]}}]
    if filters.source:
        clauses.append({"source": {"$eq": filters.source}})
    if filters.author:
        clauses.append({"author_keys": {"$contains": author_key(filters.author)}})
    if filters.category:
        clauses.append({"category_keys": {"$contains": filters.category.casefold()}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class ChunkDoc:
    """One chunk as the lexical index stores it."""

    chunk_id: str
    paper_id: str
    terms: str  # rag.text.terms(chunk text), space-joined


def _chunk_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("chunk_id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("paper_id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("body", stored=True, tokenizer_name="whitespace", index_option="freq")
    sb.add_integer_field("year", indexed=True, fast=True)
    sb.add_text_field("source", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("author", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("category", tokenizer_name="raw", index_option="basic")
    return sb.build()


def _paper_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("paper_id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("key", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("method", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("words", tokenizer_name="whitespace", index_option="position")
    return sb.build()


def _open(path: Path, schema: tantivy.Schema, create: bool) -> tantivy.Index:
    if not create and not (path / "meta.json").is_file():
        raise StoreError(f"the lexical index at {path} is missing; {REBUILD_LEXICAL}")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    try:
        index = tantivy.Index(schema, path=str(path), reuse=True)
        index.config_reader("Manual")
        _ = index.searcher().num_docs  # reads meta.json and opens every segment
    except Exception as err:
        raise StoreError(f"the lexical index at {path} is damaged ({err}); {REBUILD_LEXICAL}") from None
    return index


class LexicalIndex:
    """The chunk and paper indexes of one store generation (see the module docstring)."""

    def __init__(self, path: Path, create: bool = False):
        self.path = Path(path)
        fresh = create and not LexicalIndex.exists(self.path)
        if not fresh and LexicalIndex.exists(self.path) and _version(self.path) != SCHEMA_VERSION:
            raise StoreError(f"the lexical index at {self.path} was built by another version of the assistant; "
                             f"{REBUILD_LEXICAL}")
        self._chunks_schema, self._papers_schema = _chunk_schema(), _paper_schema()
        self.chunks = _open(self.path / "chunks", self._chunks_schema, create)
        self.papers = _open(self.path / "papers", self._papers_schema, create)
        if fresh:
            (self.path / "VERSION").write_text(SCHEMA_VERSION)
        self._writers: tuple | None = None
        self._lock = threading.Lock()
        self._df: dict[str, int] = {}
        self._searchers = (self.chunks.searcher(), self.papers.searcher())
        self._avg: float | None = None
        self._counts = _counts_cache()
        self._inode = self.path.stat().st_ino

    @property
    def replaced(self) -> bool:
        """Whether the directory was swapped for a rebuilt one since this was opened."""
        try:
            return self.path.stat().st_ino != self._inode
        except OSError:
            return True

    @staticmethod
    def exists(path: Path) -> bool:
        return (Path(path) / "chunks" / "meta.json").is_file() and (Path(path) / "papers" / "meta.json").is_file()

    # --- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        """See the last commit of any process (a few milliseconds; segments are mmapped)."""
        try:
            self.chunks.reload()
            self.papers.reload()
            searchers = (self.chunks.searcher(), self.papers.searcher())
        except Exception as err:
            raise StoreError(f"the lexical index at {self.path} is damaged ({err}); {REBUILD_LEXICAL}") from None
        with self._lock:
            self._searchers, self._df, self._avg, self._counts = searchers, {}, None, _counts_cache()

    @property
    def num_docs(self) -> int:
        """Chunks indexed (live documents)."""
        return self._searchers[0].num_docs

    @property
    def num_papers(self) -> int:
        return self._searchers[1].num_docs

    def doc_freq(self, term: str) -> int:
        """Chunks containing the analysed `term` (cached until the next reload)."""
        df = self._df.get(term)
        if df is None:
            df = self._df[term] = self._searchers[0].doc_freq("body", term)
        return df

    def _filter_queries(self, filters: Filters | None, restrict: Collection[str] | None) -> list[tantivy.Query]:
        schema, q = self._chunks_schema, tantivy.Query
        out = []
        if restrict is not None:
            out.append(q.term_set_query(schema, "paper_id", sorted(restrict)))
        if filters is not None and not filters.empty:
            if filters.year is not None:
                out.append(q.range_query(schema, "year", tantivy.FieldType.Integer, filters.year[0], filters.year[1]))
            if filters.source:
                out.append(q.term_query(schema, "source", filters.source))
            if filters.author:
                out.append(q.term_query(schema, "author", author_key(filters.author)))
            if filters.category:
                out.append(q.term_query(schema, "category", filters.category.casefold()))
        return out

    def search(self, q_terms: list[str], n: int, filters: Filters | None = None,
               restrict: Collection[str] | None = None) -> list[tuple[str, str, float]]:
        """The `n` best chunks for the analysed query terms, as (chunk id, paper id, BM25),
        best first; only chunks matching `filters` and, when given, of the `restrict` papers."""
        if not q_terms or (restrict is not None and not restrict):
            return []
        schema, q = self._chunks_schema, tantivy.Query
        query = q.boolean_query([(tantivy.Occur.Should, q.term_query(schema, "body", t))
                                 for t in dict.fromkeys(q_terms)])
        filters_q = self._filter_queries(filters, restrict)
        if filters_q:
            # Filter clauses score nothing (boost 0): BM25 alone orders the hits.
            query = q.boolean_query([(tantivy.Occur.Must, query)]
                                    + [(tantivy.Occur.Must, q.boost_query(f, 0.0)) for f in filters_q])
        with self._lock:  # a searcher and the counts read through it, never one reload's with another's
            searcher, counts = self._searchers[0], self._counts
        # tantivy's BM25 (k1 1.2, document lengths quantised to a byte) picks a deeper pool,
        # which is rescored with exactly the BM25 the eval figures were tuned on (bm25s'
        # "lucene": k1 1.5, b 0.75, exact lengths, a repeated query term counted again).
        hits = searcher.search(query, max(RESCORE_DEPTH * n, n + 50), count=False).hits
        if not hits:
            return []
        avgdl = self._avgdl(searcher, hits[0][1])
        weights = {t: q_terms.count(t) * self._idf(t, searcher.num_docs) for t in dict.fromkeys(q_terms)}
        out = []
        for chunk_id, length, tfs in self._term_counts(searcher, counts, [address for _, address in hits]):
            norm = K1 * (1 - B + B * length / avgdl)
            score = 0.0
            for t, w in weights.items():
                if tf := tfs.get(t):
                    score += w * tf / (tf + norm)
            out.append((chunk_id, chunk_id.rsplit(":", 1)[0], score))
        out.sort(key=lambda hit: (-hit[2], hit[0]))
        return out[:n]

    def _term_counts(self, searcher, counts: LRUCache, addresses: list) -> list[tuple[str, int, Counter]]:
        """(chunk id, length in terms, term counts) of each chunk, from `counts` (kept per
        reload: an address names a chunk only within one searcher) or read and counted."""
        keys = [(a.segment_ord, a.doc) for a in addresses]
        with self._lock:
            found = [counts.get(key) for key in keys]
        fresh = {}
        for i, entry in enumerate(found):
            if entry is None:
                doc = searcher.doc(addresses[i])
                words = doc.get_first("body").split(" ")  # the chunk's terms, space-joined at ingest
                found[i] = fresh[keys[i]] = (doc.get_first("chunk_id"), len(words), Counter(words))
        if fresh:
            with self._lock:
                counts.update(fresh)
        return found

    def _idf(self, term: str, n_docs: int) -> float:
        df = self.doc_freq(term)
        return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))

    def _avgdl(self, searcher, address) -> float:
        """The mean chunk length in terms, as tantivy keeps it (read once per reload from
        its score explanation: the Python binding exposes it nowhere else)."""
        if self._avg is None:
            query = tantivy.Query.all_query()
            try:
                body = searcher.doc(address)["body"][0].split()
                explained = tantivy.Query.term_query(self._chunks_schema, "body", body[0]).explain(searcher, address)
                self._avg = _find_avgdl(json.loads(explained.to_json()))
            except Exception:
                self._avg = None
            if not self._avg:  # a fallback that never happens with tantivy 0.27: sample the lengths
                sample = searcher.search(query, 1000, count=False).hits
                lengths = [len(searcher.doc(a)["body"][0].split()) for _, a in sample]
                self._avg = sum(lengths) / max(len(lengths), 1) or 1.0
        return self._avg

    def chunk_ids(self) -> dict[str, str]:
        """Every indexed chunk id -> its paper id (reads every document: for checks and tests)."""
        searcher = self._searchers[0]
        hits = searcher.search(tantivy.Query.all_query(), max(searcher.num_docs, 1), count=False).hits
        docs = (searcher.doc(a) for _, a in hits)
        return {d["chunk_id"][0]: d["paper_id"][0] for d in docs}

    def chunks_of(self, paper_ids: Collection[str]) -> dict[str, list[str]]:
        """paper id -> the ids of its indexed chunks, for those of `paper_ids` that have any
        (one term-set query on the `paper_id` field: microseconds at any size, where Chroma's
        metadata-filtered `get` took 21 ms at 100k papers)."""
        if not paper_ids:
            return {}
        searcher = self._searchers[0]
        query = tantivy.Query.term_set_query(self._chunks_schema, "paper_id", sorted(set(paper_ids)))
        found = searcher.search(query, 32 * len(paper_ids), count=True)
        if found.count > len(found.hits):  # papers of many chunks: ask again for all of them
            found = searcher.search(query, found.count, count=False)
        out: dict[str, list[str]] = {}
        for _, address in found.hits:
            doc = searcher.doc(address)
            out.setdefault(doc.get_first("paper_id"), []).append(doc.get_first("chunk_id"))
        return out

    def count_matching(self, filters: Filters) -> int:
        """Chunks that pass `filters` (0: no paper matches them)."""
        filters_q = self._filter_queries(filters, None)
        if not filters_q:
            return self.num_docs
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, f) for f in filters_q])
        return self._searchers[0].search(query, 1, count=True).count

    # --- names (rag.names.CorpusNames) -----------------------------------------------------
    def papers_with_keys(self, keys: Collection[str], field: str = "key", limit: int = 200) -> list[str]:
        """Ids of papers whose `field` ("key" or "method") holds one of `keys`."""
        if not keys:
            return []
        searcher = self._searchers[1]
        query = tantivy.Query.term_set_query(self._papers_schema, field, sorted(keys))
        return [searcher.doc(a)["paper_id"][0] for _, a in searcher.search(query, limit, count=False).hits]

    def count_papers(self, field: str, value: str | list[str]) -> int:
        """Papers whose `method` is `value`, or whose `words` hold the phrase `value` (a list)."""
        schema, searcher = self._papers_schema, self._searchers[1]
        if isinstance(value, list):
            if not value:
                return 0
            query = (tantivy.Query.term_query(schema, field, value[0]) if len(value) == 1
                     else tantivy.Query.phrase_query(schema, field, value))
        else:
            query = tantivy.Query.term_query(schema, field, value)
        return searcher.search(query, 1, count=True).count

    # --- writing ---------------------------------------------------------------------------
    def _writer(self, wait: float = WRITER_WAIT):
        """Both writers, held until `close()`. Another process may hold them briefly (a query
        host applying the server's ingest log to this copy): wait up to `wait` seconds."""
        deadline = time.monotonic() + wait
        while self._writers is None:
            try:
                chunk_w = self.chunks.writer(WRITER_HEAP, 1)
                try:
                    paper_w = self.papers.writer(WRITER_HEAP // 4, 1)
                except Exception:
                    chunk_w.rollback()
                    del chunk_w
                    raise
                self._writers = (chunk_w, paper_w)
            except ValueError as err:
                if time.monotonic() > deadline:
                    raise StoreError(f"the lexical index at {self.path} is locked by another writer ({err})") from None
                time.sleep(0.2)
        return self._writers

    def replace(self, papers: list[Paper], chunk_docs: list[ChunkDoc], names: list[dict]) -> None:
        """Make `papers` have exactly the given chunk documents and name records, and commit.
        Idempotent: a rerun of the same batch leaves the same index."""
        chunk_w, paper_w = self._writer()
        by_paper = {p.paper_id: p for p in papers}
        for pid in by_paper:
            chunk_w.delete_documents_by_term("paper_id", pid)
            paper_w.delete_documents_by_term("paper_id", pid)
        for doc in chunk_docs:
            paper = by_paper[doc.paper_id]
            # The same filter fields as the chunk's Chroma metadata, under this schema's names.
            fields = {"chunk_id": doc.chunk_id, "paper_id": doc.paper_id, "body": doc.terms,
                      **{_FIELD_NAMES.get(k, k): v for k, v in filter_metadata(paper).items()}}
            chunk_w.add_document(tantivy.Document(**fields))
        for record in names:
            paper_w.add_document(tantivy.Document(**record))
        # The paper index first: a name without chunks finds nothing, chunks without a name
        # record only miss a name lookup until the rerun.
        paper_w.commit()
        chunk_w.commit()
        self.reload()

    def delete(self, paper_ids: Iterable[str]) -> None:
        """Remove every document of these papers, and commit (nothing to remove: no commit)."""
        paper_ids = list(paper_ids)
        if not paper_ids:
            return
        chunk_w, paper_w = self._writer()
        for pid in paper_ids:
            chunk_w.delete_documents_by_term("paper_id", pid)
            paper_w.delete_documents_by_term("paper_id", pid)
        paper_w.commit()
        chunk_w.commit()
        self.reload()

    def close(self) -> None:
        """Release the writer lock (readers need not call this)."""
        if self._writers is not None:
            for w in self._writers:
                w.wait_merging_threads()
            self._writers = None


def _version(path: Path) -> str | None:
    try:
        return (path / "VERSION").read_text().strip()
    except OSError:
        return None


def _counts_cache() -> LRUCache:
    return LRUCache(RESCORED_CACHE)


def _find_avgdl(node: dict) -> float | None:
    if node.get("description", "").startswith("avgdl"):
        return float(node["value"])
    for child in node.get("details", []):
        if (found := _find_avgdl(child)) is not None:
            return found
    return None


def name_record(paper: Paper) -> dict:
    """The `papers/` document of `paper`: its name keys, method tokens and words."""
    from rag.names import method_tokens, name_keys

    record: dict = {"paper_id": paper.paper_id, "words": " ".join(words(f"{paper.title} {paper.abstract}"))}
    if keys := name_keys(paper.title):
        record["key"] = keys
    if methods := method_tokens(paper):
        record["method"] = methods
    return record


def chunk_docs(chunks: Iterable[tuple[str, str, str]]) -> list[ChunkDoc]:
    """`ChunkDoc`s from (chunk id, paper id, chunk text)."""
    from rag.text import terms

    return [ChunkDoc(cid, pid, " ".join(terms(text))) for cid, pid, text in chunks]


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
