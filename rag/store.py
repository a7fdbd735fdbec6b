"""The Chroma store: an embedded PersistentClient by default, a Chroma server when configured.

Two collections per embedding model, both named after the model so vectors of two models
never mix:
- `chunks-<model>`: one record per chunk (id = content hash, document = embedded text,
  metadata paper_id/index/title, the chunk's vector);
- `papers-<model>`: one record per paper (document = abstract, metadata = title, authors,
  year, url, source, content hash, chunk count). Its vector is the normalised mean of the
  paper's chunk vectors. A paper record is written only after all its chunks are stored, so
  it doubles as the commit marker that makes an interrupted ingest safe to re-run.

We always hand Chroma our own vectors (its default embedding function would download a model)
and turn its telemetry off.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from rag.embedding import model_slug
from rag.errors import StoreError
from rag.models import Paper
from rag.settings import Settings

SCHEMA = 1




def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def store_location(settings: Settings) -> str:
    if settings.uses_server:
        return f"http://{settings.chroma_host}:{settings.chroma_port}"
    return str(settings.data_dir / "chroma")


_SQLITE_MAGIC = b"SQLite format 3\x00"
# PRAGMA quick_check reads the whole file (about 60 ms for the bundled corpus's 20 MB);
# above this size it is left out and damage shows up when the damaged pages are read.
QUICK_CHECK_MAX_BYTES = 512 * 1024 * 1024


def _check_sqlite(db: Path) -> None:
    """Refuse a chroma.sqlite3 that is damaged or not Chroma's before Chroma touches it:
    Chroma would add its tables to someone else's database, or open a damaged one and fail
    later, deep inside a query, with a raw error."""
    if not db.is_file() or db.stat().st_size == 0:
        return  # absent or empty: Chroma creates it
    remedy = "run `rag ingest --rebuild` to rebuild it from the corpus, or set RAG_DATA_DIR to another directory"
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
    if tables and not {"collections", "migrations", "embeddings"} <= tables:
        shown = ", ".join(sorted(tables)[:5])
        raise StoreError(f"{db} is an SQLite database of something else (tables {shown}), not a Chroma store; {remedy}")


def open_client(settings: Settings):
    """A Chroma client for `settings`; raises StoreError with a remedy when it cannot open."""
    import chromadb

    if settings.uses_server:
        try:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=_chroma_settings())
            client.heartbeat()
        except Exception as err:  # connection refused, wrong protocol, ...
            raise StoreError(f"cannot reach the Chroma server at {store_location(settings)}: {err}") from None
        return client
    path = Path(store_location(settings))
    if path.exists() and not path.is_dir():
        raise StoreError(f"store path {path} is a file, not a directory; run `rag ingest --rebuild` to "
                         "replace it, or set RAG_DATA_DIR to another directory")
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
    try:
        client = chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
        client.list_collections()
    except Exception as err:
        raise StoreError(
            f"the store at {path} is damaged ({type(err).__name__}: {err}); "
            "run `rag ingest --rebuild` to rebuild it from the corpus"
        ) from None
    return client


class Store:
    """The two collections of one embedding model on one Chroma client."""

    def __init__(self, client, embed_model: str, create: bool = True):
        self.client = client
        self.embed_model = embed_model
        slug = model_slug(embed_model)
        self.chunks_name, self.papers_name = f"chunks-{slug}", f"papers-{slug}"
        # A wide search beam makes HNSW effectively exact at this scale, so the same index gives
        # the same ranking in every process (the default ef=10 varied between runs).
        meta = {"rag_schema": SCHEMA, "embed_model": embed_model, "hnsw:space": "cosine",
                "hnsw:search_ef": 256, "hnsw:construction_ef": 256}
        try:
            if create:
                self.chunks = client.get_or_create_collection(self.chunks_name, metadata=meta, embedding_function=None)
                self.papers = client.get_or_create_collection(self.papers_name, metadata=meta, embedding_function=None)
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
            raise StoreError(f"cannot open the collections ({type(err).__name__}: {err}); "
                             "run `rag ingest --rebuild` to rebuild the store") from None
        for coll in (self.chunks, self.papers):
            if (coll.metadata or {}).get("rag_schema") != SCHEMA:
                raise StoreError(
                    f"collection {coll.name} was not written by this version of the assistant; "
                    "run `rag ingest --rebuild` to rebuild it"
                )

    # --- corpus sources, kept in the papers collection's metadata ------------------------
    def sources(self) -> dict[str, int]:
        return json.loads((self.papers.metadata or {}).get("sources", "{}"))

    def record_sources(self, counts: dict[str, int]) -> None:
        merged = self.sources()
        merged.update(counts)
        meta = {k: v for k, v in (self.papers.metadata or {}).items() if not k.startswith("hnsw:")}
        meta["sources"] = json.dumps(merged, sort_keys=True)
        self.papers.modify(metadata=meta)

    def counts(self) -> tuple[int, int]:
        """(papers, chunks) currently stored."""
        return self.papers.count(), self.chunks.count()


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
    meta = {"title": paper.title, "content_hash": digest, "n_chunks": n_chunks,
            "authors": paper.authors, "year": paper.year, "url": paper.url, "source": paper.source}
    return {k: v for k, v in meta.items() if v is not None}  # Chroma rejects None values


def paper_from_record(paper_id: str, abstract: str, meta: dict) -> Paper:
    return Paper(
        paper_id=paper_id, title=meta["title"], abstract=abstract, authors=meta.get("authors"),
        year=meta.get("year"), url=meta.get("url"), source=meta.get("source"),
    )


def delete_store(settings: Settings, embed_model: str) -> None:
    """Drop this model's collections (for `rag ingest --rebuild`). On a damaged embedded
    store the directory itself is removed, since Chroma cannot open it to drop anything."""
    import shutil

    try:
        client = open_client(settings)
    except StoreError:
        if settings.uses_server:
            raise
        path = Path(store_location(settings))
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        return
    slug = model_slug(embed_model)
    for name in (f"chunks-{slug}", f"papers-{slug}"):
        try:
            client.delete_collection(name)
        except Exception:  # absent already: nothing to drop
            pass
