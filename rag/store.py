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
from pathlib import Path

from rag.embedding import model_slug
from rag.models import Paper
from rag.settings import Settings

SCHEMA = 1


class StoreError(RuntimeError):
    """The store cannot be used as it is; the message says what to do."""


def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def store_location(settings: Settings) -> str:
    if settings.uses_server:
        return f"http://{settings.chroma_host}:{settings.chroma_port}"
    return str(settings.data_dir / "chroma")


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
        raise StoreError(f"store path {path} is a file, not a directory; point RAG_DATA_DIR elsewhere")
    if path.is_dir() and any(path.iterdir()) and not (path / "chroma.sqlite3").exists():
        raise StoreError(
            f"{path} is not a Chroma store (no chroma.sqlite3); run `rag ingest --rebuild` to "
            "replace it, or set RAG_DATA_DIR to another directory"
        )
    path.mkdir(parents=True, exist_ok=True)
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
        meta = {"rag_schema": SCHEMA, "embed_model": embed_model, "hnsw:space": "cosine"}
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
        meta = {k: v for k, v in (self.papers.metadata or {}).items() if k != "hnsw:space"}
        meta["sources"] = json.dumps(merged, sort_keys=True)
        self.papers.modify(metadata=meta)

    def counts(self) -> tuple[int, int]:
        """(papers, chunks) currently stored."""
        return self.papers.count(), self.chunks.count()


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
        shutil.rmtree(store_location(settings), ignore_errors=True)
        return
    slug = model_slug(embed_model)
    for name in (f"chunks-{slug}", f"papers-{slug}"):
        try:
            client.delete_collection(name)
        except Exception:  # absent already: nothing to drop
            pass
