"""The Chroma store: an embedded PersistentClient by default, a Chroma server when configured.

Two collections per embedding model, both named after the model so vectors of two models
never mix:
- `chunks-<model>`: one record per chunk (id = content hash, document = embedded text,
  metadata paper_id/index/title, the chunk's vector);
- `papers-<model>`: one record per paper (title, abstract, authors, year, url, source,
  content hash, chunk count), read by id and never searched. A paper record is written only
  after all its chunks are stored, so it doubles as the commit marker that makes an
  interrupted ingest safe to re-run.

Paper records come in two layouts, told apart by the papers collection's `paper_layout`:
- 2 (collections made since 2026-12-05): a one-dimensional placeholder vector (Chroma needs
  one per record), no document, and the fields, abstract included, as one JSON string under
  `paper`, beside `source` (the one field a query filters papers on: `rag remove`). Chroma's
  server applies writes on one thread, so its cost per record is the ingest's ceiling: this
  layout costs it about 0.21 CPU-ms a record where layout 1 cost 0.76 (bench.scale).
- 1 (older stores, still read and written): the mean of the chunk vectors as the vector, the
  abstract as the document, each field its own metadata key.
Readers go through `record_fields` / `paper_from_record` and never look at the layout; the
writer asks the collection (`Store.put_papers`). A paper's mean vector, where retrieval needs
it, comes from its chunks (`Store.paper_vectors`), the same in both layouts.

We always hand Chroma our own vectors (its default embedding function would download a model)
and turn its telemetry off.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
import weakref
from collections.abc import Collection
from pathlib import Path

import numpy as np

from rag import store_health
from rag.embedding import model_slug
from rag.errors import StoreError
from rag.models import Paper
from rag.settings import Settings

SCHEMA = 1
FILTER_FIELDS = 1  # version of the filter metadata on chunks
PAPER_LAYOUT = 2  # the paper-record layout new papers collections get (module docstring)
# HNSW graph build beam of new collections. Each insert costs Chroma's one writer thread time
# in proportion to it, and that thread caps how fast a server loads. 50k synthetic papers of
# mpnet vectors (bench.synth), 94 eval questions against exact search, CPU-ms per record /
# recall@10 / recall@100: 256: 1.62 / 0.992 / 0.972; 160: 1.06 / 0.986 / 0.966;
# 128: 0.84 / 0.988 / 0.965; 100: 0.70 / 0.988 / 0.958; 64: 0.42 / 0.980 / 0.929. 128 halves
# the cost for about half a point of recall@100; the search beam (256) is unchanged, and at
# the bundled corpus's size search is exact either way. Existing collections keep theirs.
HNSW_CONSTRUCTION_EF = 128




# The lexical cache directory of each server client `open_client` made (`lexical_cache_dir`):
# kept beside the client, weakly, rather than as an attribute patched onto Chroma's object.
_LEXICAL_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lexical_cache_dir(client) -> Path | None:
    """Where this host keeps its copy of a Chroma server's lexical indexes, for a client made
    by `open_client`; None for any other client."""
    return _LEXICAL_CACHE.get(client)


def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def store_location(settings: Settings) -> str:
    if settings.uses_server:
        return f"http://{settings.chroma_host}:{settings.chroma_port}"
    return str(settings.data_dir / "chroma")


_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHROMA_TABLES = {"collections", "migrations", "embeddings"}
# The two tables Chroma creates before its first migration. A process killed while Chroma
# was creating the store leaves only these (seen in CI: `rag ingest` killed 1 s into its
# start-up); each migration commits on its own, so the next open finishes the rest.
_CHROMA_BOOTSTRAP = {"migrations", "acquire_write"}
# PRAGMA quick_check reads the whole file (about 60 ms for the bundled corpus's 20 MB);
# above this size it is left out and damage shows up when the damaged pages are read.
QUICK_CHECK_MAX_BYTES = 512 * 1024 * 1024


def _check_sqlite(db: Path) -> None:
    """Refuse a chroma.sqlite3 that is damaged or not Chroma's before Chroma touches it:
    Chroma would add its tables to someone else's database, or open a damaged one and fail
    later, deep inside a query, with a raw error."""
    remedy = "run `rag ingest --rebuild` to rebuild it from the corpus, or set RAG_DATA_DIR to another directory"
    if not db.is_file():
        return  # absent: Chroma creates it
    if db.stat().st_size == 0:
        # Chroma would silently start an empty database here, orphaning the segment folders.
        raise StoreError(f"the store at {db.parent} is damaged ({db.name} is empty: 0 bytes); {remedy}")
    with db.open("rb") as fh:
        if fh.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise StoreError(f"the store at {db.parent} is damaged ({db.name} is not an SQLite database); {remedy}")
    try:
        # Not read-only: after a crash mid-write SQLite must roll back the hot journal first.
        conn = sqlite3.connect(db, timeout=30)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if db.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    detail = " ".join(" ".join(problems).replace("*** in database main ***", "").split())
                    raise sqlite3.DatabaseError(f"integrity check: {detail[:160]}")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StoreError(f"the store at {db.parent} is damaged ({err}); {remedy}") from None
    if tables and not (_CHROMA_TABLES <= tables or _CHROMA_BOOTSTRAP <= tables):
        shown = ", ".join(sorted(tables)[:5])
        raise StoreError(f"{db} is an SQLite database of something else (tables {shown}), not a Chroma store; {remedy}")


def open_client(settings: Settings, create: bool = True):
    """A Chroma client for `settings`; raises StoreError naming the cause when it cannot open.

    `create=False` (readers: ask, stats, ui) never creates a data directory: no store there is
    "no index yet". A store this user cannot write is opened from a private copy, so an intact
    read-only index still answers; `rag ingest` refuses it (`check_writable`)."""
    import chromadb

    if settings.uses_server:
        try:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                         settings=_chroma_settings())
            client.heartbeat()
        except Exception as err:  # connection refused, wrong protocol, ...
            raise StoreError(f"cannot reach the Chroma server at {store_location(settings)}: {err}") from None
        # This host's copy of the lexical index of a server's stores (rag.lexical_store).
        _LEXICAL_CACHE[client] = settings.data_dir / "lexical-cache" / f"{settings.chroma_host}-{settings.chroma_port}"
        return client
    path = Path(store_location(settings))
    if path.exists() and not path.is_dir():
        raise StoreError(f"store path {path} is a file, not a directory; run `rag ingest --rebuild` to "
                         "replace it, or set RAG_DATA_DIR to another directory")
    if not create and not (path / "chroma.sqlite3").exists() and not (path.is_dir() and any(path.iterdir())):
        raise StoreError(f"no index at {path} yet; run `rag ingest` first")
    if path.is_dir() and any(path.iterdir()) and not (path / "chroma.sqlite3").exists():
        raise StoreError(
            f"{path} is not a Chroma store (no chroma.sqlite3); run `rag ingest --rebuild` to "
            "replace it, or set RAG_DATA_DIR to another directory"
        )
    _check_sqlite(path / "chroma.sqlite3")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"cannot create the store directory {path} ({err.strerror or err}); "
                         "set RAG_DATA_DIR to a writable directory") from None
    if store_health.unwritable(path) is None:
        return _persistent(path)
    copy = store_health.private_copy(path)
    try:
        client = _persistent(copy, where=path)
    except BaseException:
        store_health.discard_copy(copy)
        raise
    weakref.finalize(client, store_health.discard_copy, copy)  # the copy lives as long as its client
    return client


def _persistent(path: Path, where: Path | None = None):
    import chromadb

    try:
        client = chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
        client.list_collections()
    except Exception as err:
        _forget_system(path)  # a half-started system must not be handed out again
        raise store_health.store_error(err, str(where or path), where or path) from None
    return client


def _forget_system(path: Path) -> None:
    """Make the next PersistentClient(path) of this process a fresh one. Chroma keeps one
    system per path per process and hands it out again; that system's vector index never sees
    what another process wrote after it was loaded (measured: 39 of 79 chunks found), and after
    a failed start it is unusable ('RustBindingsAPI' object has no attribute 'bindings').

    The one place this project touches Chroma's internals. Chroma (1.5) has no public way to
    drop one path's cached system: `Client.close()` stops it only when the last client of that
    path closes (here, searches in other threads still hold the old client), and the public
    `SharedSystemClient.clear_system_cache()` forgets every path's system at once."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(str(path), None)


def check_writable(settings: Settings) -> None:
    """Raise StoreError (read-only, disk full) unless an ingest can write the store."""
    if settings.uses_server:
        return
    path = Path(store_location(settings))
    reason = store_health.unwritable(path)
    if reason:
        raise StoreError(f"the store at {path} is {reason}; make it writable or set RAG_DATA_DIR to another directory")
    if store_health.disk_full(path):
        raise StoreError(f"disk full: no space left for the store at {path}; free some space and run the command again")


def read_pointer(client, slug: str, where: str = "the store", path: Path | None = None) -> tuple[int, str]:
    """(live generation, version token) of model `slug`'s index; (0, "") before any pointer."""
    try:
        meta = client.get_collection(f"rag-{slug}", embedding_function=None).metadata or {}
    except Exception as err:
        if "does not exist" in str(err).lower() or "not found" in str(err).lower():
            return 0, ""
        raise store_health.store_error(err, where, path) from None
    return int(meta.get("generation", 0)), str(meta.get("version", ""))


class Store:
    """The two collections of one embedding model on one Chroma client, in one generation.

    A small third collection, `rag-<model>`, holds in its metadata the generation that is live
    (`rag ingest --rebuild` builds generation N+1 beside N, then switches this pointer) and a
    version token every committed ingest batch changes, which open indexes poll to reload."""

    def __init__(self, client, embed_model: str, create: bool = True, generation: int | None = None):
        self.client = client
        self.embed_model = embed_model
        slug = self.slug = model_slug(embed_model)
        self.meta_name = f"rag-{slug}"
        if generation is None:
            generation = self.pointer()[0]
        self.generation = generation
        suffix = f"-g{generation}" if generation else ""
        self.chunks_name, self.papers_name = f"chunks-{slug}{suffix}", f"papers-{slug}{suffix}"
        self._db_inode = self._inode()
        # A wide search beam makes HNSW effectively exact at this scale, so the same index gives
        # the same ranking in every process (the default ef=10 varied between runs).
        meta = {"rag_schema": SCHEMA, "embed_model": embed_model, "hnsw:space": "cosine",
                "hnsw:search_ef": 256, "hnsw:construction_ef": HNSW_CONSTRUCTION_EF}
        try:
            if create:
                self.chunks = client.get_or_create_collection(self.chunks_name, metadata=meta, embedding_function=None)
                # An existing collection keeps its own metadata, so an older store stays layout 1.
                self.papers = client.get_or_create_collection(
                    self.papers_name, metadata={**meta, "paper_layout": PAPER_LAYOUT}, embedding_function=None)
            else:
                self.chunks = client.get_collection(self.chunks_name, embedding_function=None)
                self.papers = client.get_collection(self.papers_name, embedding_function=None)
        except StoreError:
            raise
        except Exception as err:
            message = str(err).lower()
            if not create and ("does not exist" in message or "not found" in message):
                raise StoreError(
                    f"no index for embedding model {embed_model!r} yet; run `rag ingest` first"
                ) from None
            raise store_health.store_error(err, self.location, self._path()) from None
        for coll in (self.chunks, self.papers):
            if (coll.metadata or {}).get("rag_schema") != SCHEMA:
                raise StoreError(
                    f"collection {coll.name} was not written by this version of the assistant; "
                    "run `rag ingest --rebuild` to rebuild it"
                )
        self.paper_layout = int((self.papers.metadata or {}).get("paper_layout", 1))

    @property
    def location(self) -> str:
        path = self._path()
        if path is None:
            return "the Chroma server"
        return str(store_health.copied_from(str(path)) or path)

    def _path(self) -> Path | None:
        path = getattr(self.client.get_settings(), "persist_directory", None)
        return Path(path) if path and self.client.get_settings().is_persistent else None

    def _inode(self) -> int | None:
        path = self._path()
        try:
            return (path / "chroma.sqlite3").stat().st_ino if path is not None else None
        except OSError:
            return None

    @property
    def is_server(self) -> bool:
        return self._path() is None

    @property
    def read_only_copy(self) -> bool:
        """True when this store is a private copy of a read-only one (nothing written sticks)."""
        path = self._path()
        return path is not None and store_health.copied_from(str(path)) is not None

    # --- the pointer: live generation and version ------------------------------------------
    def pointer(self) -> tuple[int, str]:
        """(live generation, version token) as stored now; (0, "") for a store without one."""
        return read_pointer(self.client, self.slug, self.location, self._path())

    def changed(self, seen: tuple[int, str]) -> bool:
        """Whether the store moved on since `seen` (a `pointer()` result): a commit, a rebuild,
        or the embedded directory swapped for a rebuilt one."""
        return self._inode() != self._db_inode or self.pointer() != seen

    def publish(self, switch: bool = False) -> None:
        """Announce a commit with a new version token, which open indexes notice and reload.
        `switch=True` also makes this store's generation the live one (the end of a rebuild);
        a generation that is not live yet announces nothing."""
        live = self.pointer()[0]
        if not switch and live != self.generation:
            return
        coll = self.client.get_or_create_collection(self.meta_name, embedding_function=None)
        coll.modify(metadata={"rag_schema": SCHEMA, "generation": self.generation, "version": uuid.uuid4().hex})

    def reopen(self) -> Store:
        """The same store opened afresh at its live generation; on an embedded store a new
        client, since this process's old one does not see vectors other processes added."""
        client = self.client
        path = self._path()
        if path is not None and not self.read_only_copy:
            _forget_system(path)
            client = _persistent(path)
        return Store(client, self.embed_model, create=False)

    # --- corpus sources, kept in the papers collection's metadata ------------------------
    def sources(self) -> dict[str, int]:
        return json.loads((self.papers.metadata or {}).get("sources", "{}"))

    def record_sources(self, counts: dict[str, int]) -> None:
        """Add `counts` to the source list. Read-modify-write: callers hold the writer lock."""
        current = self.client.get_collection(self.papers_name, embedding_function=None)
        merged = json.loads((current.metadata or {}).get("sources", "{}"))
        merged.update(counts)
        meta = {k: v for k, v in (current.metadata or {}).items() if not k.startswith("hnsw:")}
        meta["sources"] = json.dumps(merged, sort_keys=True)
        self.papers.modify(metadata=meta)

    def set_sources(self, counts: dict[str, int]) -> None:
        """Replace the source list (after `rag.ingest.remove_source`); callers hold the writer lock."""
        current = self.client.get_collection(self.papers_name, embedding_function=None)
        meta = {k: v for k, v in (current.metadata or {}).items() if not k.startswith("hnsw:")}
        meta["sources"] = json.dumps(counts, sort_keys=True)
        self.papers.modify(metadata=meta)

    def counts(self) -> tuple[int, int]:
        """(papers, chunks) currently stored."""
        return self.papers.count(), self.chunks.count()

    # --- paper records ------------------------------------------------------------------------
    def put_papers(self, records: list[tuple[Paper, str, int]], vectors: dict[str, list[np.ndarray]]) -> None:
        """Write (upsert) paper records: (paper, content hash, chunk count) each, in this
        collection's layout. `vectors`: paper id -> its chunk vectors, used by layout 1 only."""
        ids = [p.paper_id for p, _, _ in records]
        if self.paper_layout >= 2:
            metas = [{"paper": json.dumps({**paper_metadata(p, digest, n), "abstract": p.abstract}, ensure_ascii=False),
                      **({"source": p.source} if p.source else {})} for p, digest, n in records]
            self.papers.upsert(ids=ids, embeddings=np.ones((len(ids), 1), dtype=np.float32), metadatas=metas)
            return
        self.papers.upsert(ids=ids, embeddings=np.stack([mean_vector(vectors[pid]) for pid in ids]),
                           documents=[p.abstract for p, _, _ in records],
                           metadatas=[paper_metadata(p, digest, n) for p, digest, n in records])

    def records(self, ids: list[str] | None = None, limit: int | None = None,
                offset: int | None = None) -> list[tuple[str, dict]]:
        """(paper id, `record_fields`) of the stored papers among `ids`, or a page of all of
        them (`limit`/`offset`), in either layout."""
        # Layout 2 has no documents: not asking for them saves the server a quarter of its
        # work per record (150 records at 100k papers: 8.7 -> 6.3 CPU-ms).
        include = ["documents", "metadatas"] if self.paper_layout < 2 else ["metadatas"]
        rows = self.papers.get(ids=ids, limit=limit, offset=offset, include=include)
        documents = rows["documents"] or [None] * len(rows["ids"])
        return [(pid, record_fields(doc, meta)) for pid, doc, meta in zip(rows["ids"], documents, rows["metadatas"])]

    def chunk_vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """chunk id -> its stored vector, for the ids among `chunk_ids` that are stored."""
        got = self.chunks.get(ids=chunk_ids, include=["embeddings"])
        return {cid: np.asarray(v, dtype=np.float32) for cid, v in zip(got["ids"], got["embeddings"])}

    def paper_vectors(self, paper_ids: list[str], chunk_ids: Collection[str] = ()) -> dict[str, np.ndarray]:
        """paper id -> the normalised mean of its chunk vectors (what pseudo-relevance feedback
        moves the query towards), for the papers among `paper_ids` that have chunks.

        `chunk_ids`: the papers' chunk ids where the caller knows them (the lexical index
        holds them, `LexicalIndex.chunks_of`); those are read by id. A paper none of whose
        chunks is among them is read by its `paper_id` metadata instead, a filtered `get`
        that Chroma answers by scanning (21 ms for three papers at 100k papers, against
        1.8 ms by id)."""
        wanted = set(paper_ids)
        by_paper: dict[str, list[tuple[int, np.ndarray]]] = {}

        def collect(rows: dict) -> None:
            for vec, meta in zip(rows["embeddings"], rows["metadatas"]):
                if meta["paper_id"] in wanted:
                    by_paper.setdefault(meta["paper_id"], []).append((meta["index"], np.asarray(vec, np.float32)))

        if chunk_ids:
            collect(self.chunks.get(ids=list(chunk_ids), include=["embeddings", "metadatas"]))
        if missing := [pid for pid in paper_ids if pid not in by_paper]:
            collect(self.chunks.get(where={"paper_id": {"$in": missing}}, include=["embeddings", "metadatas"]))
        # In chunk order, as the ingest averaged them: the same float sums, the same vector.
        return {pid: mean_vector([v for _, v in sorted(parts, key=lambda iv: iv[0])])
                for pid, parts in by_paper.items()}


def get_all(collection, include: list[str], page: int = 5000) -> dict[str, list]:
    """Every record of a collection, read `page` at a time: one unbounded `get()` fails on
    large collections (SQLite's "too many SQL variables", seen at 100k papers)."""
    out: dict[str, list] = {"ids": [], **{key: [] for key in include}}
    offset = 0
    while True:
        rows = collection.get(include=include, limit=page, offset=offset)
        for key in out:
            out[key].extend(rows[key])
        if len(rows["ids"]) < page:
            return out
        offset += page


def paper_metadata(paper: Paper, digest: str, n_chunks: int) -> dict:
    # filter_fields: this paper's chunks carry the filter metadata (rag.lexical.filter_metadata);
    # a paper stored before they existed is refreshed, without re-embedding, by the next ingest.
    meta = {"title": paper.title, "content_hash": digest, "n_chunks": n_chunks, "filter_fields": FILTER_FIELDS,
            "authors": paper.authors, "year": paper.year, "url": paper.url, "source": paper.source,
            "venue": paper.venue, "doi": paper.doi, "categories": paper.categories}
    return {k: v for k, v in meta.items() if v is not None}  # Chroma rejects None values


def mean_vector(vectors: list[np.ndarray]) -> np.ndarray:
    """The normalised mean of a paper's chunk vectors."""
    mean = np.mean(vectors, axis=0)
    return mean / (np.linalg.norm(mean) or 1.0)


def record_fields(document: str | None, meta: dict | None) -> dict:
    """A stored paper record's fields (`paper_metadata`'s keys plus "abstract"), whatever its
    layout (module docstring)."""
    meta = meta or {}
    if "paper" in meta:
        return json.loads(meta["paper"])
    return {**meta, "abstract": document}


def paper_from_record(paper_id: str, fields: dict) -> Paper:
    """The `Paper` of a record's `record_fields`."""
    return Paper(
        paper_id=paper_id, title=fields["title"], abstract=fields["abstract"], authors=fields.get("authors"),
        year=fields.get("year"), url=fields.get("url"), source=fields.get("source"), venue=fields.get("venue"),
        doi=fields.get("doi"), categories=fields.get("categories"),
    )
