"""The Chroma store: collection naming, telemetry, and damaged or foreign stores detected
with a clear StoreError (one line from the CLI), never answered from, and recovered by
`rag ingest --rebuild`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from rag.embedding import model_path, model_slug
from rag.ingest import ingest
from rag.pipeline import build_pipeline
from rag.rebuild import rebuilding
from rag.settings import Settings
from rag.store import HNSW_CONSTRUCTION_EF, SCHEMA, Store, StoreError, open_client

QUESTIONS = ["Which papers bridge CNNs and ViTs?", "What is CvT?", "How do vision transformers work?"]


def copy_index(bundled_settings: Settings, dest: Path) -> Settings:
    shutil.copytree(bundled_settings.data_dir, dest)
    return Settings(data_dir=dest)


def answers(settings: Settings, embedder) -> list[tuple[str, list[str]]]:
    pipe = build_pipeline(settings, embedder=embedder)
    return [(a.text, [c.paper_id for c in a.citations]) for a in map(pipe.answer, QUESTIONS)]


# --- names, metadata, telemetry ---------------------------------------------------------

def test_collection_names_carry_the_model_slug(tmp_path):
    client = open_client(Settings(data_dir=tmp_path / "d"))
    packaged = Store(client, "all-MiniLM-L6-v2")
    assert (packaged.chunks_name, packaged.papers_name) == ("chunks-all-minilm-l6-v2", "papers-all-minilm-l6-v2")
    local = str(model_path("all-MiniLM-L6-v2"))  # the same model, named by its directory
    by_path = Store(client, local)
    slug = model_slug(local)
    assert by_path.chunks_name == f"chunks-{slug}" and slug != "all-minilm-l6-v2"
    assert {c.name for c in client.list_collections()} == {
        "chunks-all-minilm-l6-v2", "papers-all-minilm-l6-v2", f"chunks-{slug}", f"papers-{slug}"}
    assert packaged.chunks.metadata["embed_model"] == "all-MiniLM-L6-v2"
    assert by_path.chunks.metadata["embed_model"] == local


def test_new_collections_build_with_the_cheaper_beam_and_old_ones_keep_theirs(tmp_path):
    client = open_client(Settings(data_dir=tmp_path / "d"))
    client.create_collection("chunks-all-minilm-l6-v2", embedding_function=None, metadata={  # as stores before
        "rag_schema": SCHEMA, "embed_model": "all-MiniLM-L6-v2", "hnsw:space": "cosine",
        "hnsw:search_ef": 256, "hnsw:construction_ef": 256})
    store = Store(client, "all-MiniLM-L6-v2")
    # Chroma builds each collection's graph with what it was created with: an older store is
    # never rebuilt behind the user's back, a new collection gets the cheaper beam.
    assert store.chunks.configuration["hnsw"]["ef_construction"] == 256
    assert store.papers.configuration["hnsw"]["ef_construction"] == HNSW_CONSTRUCTION_EF < 256
    assert store.papers.configuration["hnsw"]["ef_search"] == 256


def test_telemetry_off_embedded(tmp_path):
    client = open_client(Settings(data_dir=tmp_path / "d"))
    assert client.get_settings().anonymized_telemetry is False


@pytest.mark.chroma_server
def test_telemetry_off_server(chroma_server, tmp_path):
    host, port = chroma_server
    client = open_client(Settings(data_dir=tmp_path, chroma_host=host, chroma_port=port))
    assert client.get_settings().anonymized_telemetry is False


def test_unreachable_server_is_a_store_error(tmp_path):
    from conftest import free_port

    s = Settings(data_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        open_client(s)


# --- damaged and foreign stores ----------------------------------------------------------

def _garbage_file(store: Path) -> None:
    (store / "chroma.sqlite3").write_bytes(os.urandom(200_000))


def _garbage_at(fraction: float):
    def damage(store: Path) -> None:
        db = store / "chroma.sqlite3"
        data = bytearray(db.read_bytes())
        at = int(len(data) * fraction)
        data[at:at + 8192] = os.urandom(8192)
        db.write_bytes(bytes(data))
    return damage


def _truncated(store: Path) -> None:
    db = store / "chroma.sqlite3"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])


def _random_files(store: Path) -> None:
    shutil.rmtree(store)
    store.mkdir()
    for i in range(5):
        (store / f"blob{i}.bin").write_bytes(os.urandom(4096))


def _foreign_sqlite(store: Path) -> None:
    shutil.rmtree(store)
    store.mkdir()
    conn = sqlite3.connect(store / "chroma.sqlite3")
    conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()


def _foreign_collections(store: Path) -> None:
    """A Chroma store written by another program, which happens to use our names."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    shutil.rmtree(store)
    client = chromadb.PersistentClient(path=str(store), settings=ChromaSettings(anonymized_telemetry=False))
    for name in ("notes", "chunks-all-minilm-l6-v2", "papers-all-minilm-l6-v2"):
        coll = client.create_collection(name, embedding_function=None)
        coll.add(ids=["x"], embeddings=[[0.5] * 384], documents=["someone else's document"],
                 metadatas=[{"paper_id": "x"}])


def _store_is_a_file(store: Path) -> None:
    shutil.rmtree(store)
    store.write_text("not a directory")


DAMAGE = {
    "garbage sqlite": (_garbage_file, "damaged"),
    "garbage at 5%": (_garbage_at(0.05), "damaged"),
    "garbage at 50%": (_garbage_at(0.5), "damaged"),
    "garbage at 90%": (_garbage_at(0.9), "damaged"),
    "truncated sqlite": (_truncated, "damaged"),
    "random files": (_random_files, "not a Chroma store"),
    "foreign sqlite": (_foreign_sqlite, "of something else"),
    "foreign collections": (_foreign_collections, "not written by this version"),
    "store is a file": (_store_is_a_file, "is a file"),
}


CLI_CASES = {"garbage sqlite", "garbage at 50%", "random files", "foreign sqlite", "foreign collections"}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_store_detected_then_rebuilt(case, bundled_settings, embedder, tmp_path, rag_cli, real_papers,
                                             write_corpus):
    damage, message = DAMAGE[case]
    s = copy_index(bundled_settings, tmp_path / "data")
    damage(s.data_dir / "chroma")
    # No list of where the sources were read (an index from before it was kept): the rebuild
    # re-reads only the file given. Keeping the recorded sources is tests/test_rebuild.py's.
    (s.data_dir / "sources.json").unlink(missing_ok=True)

    with pytest.raises(StoreError, match=message) as refused:
        build_pipeline(s, embedder=embedder)
    assert "--rebuild" in str(refused.value) and "\n" not in str(refused.value)
    if case in CLI_CASES:  # each `rag` start costs seconds: the CLI sees a representative few
        asked = rag_cli("ask", "What is CvT?", data_dir=s.data_dir)
        assert asked.returncode == 2
        assert asked.stdout == ""
        assert asked.stderr.startswith("rag: error: ") and asked.stderr.count("\n") == 1
        assert message in asked.stderr and "--rebuild" in asked.stderr
        assert "Traceback" not in asked.stderr

    if case == "foreign sqlite":  # refused before Chroma could add its tables to it
        conn = sqlite3.connect(s.data_dir / "chroma" / "chroma.sqlite3")
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("invoices",)]
        conn.close()

    corpus = write_corpus(tmp_path / "small.jsonl", real_papers[:5])
    if case in ("garbage sqlite", "foreign collections"):  # through the CLI, as a user would
        rebuilt = rag_cli("ingest", "--rebuild", "--quiet", str(corpus), data_dir=s.data_dir)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "new 5" in rebuilt.stdout
    else:
        with rebuilding(s, s.embed_model) as store:
            ingest([corpus], s, store, embedder=embedder)
    pipe = build_pipeline(s, embedder=embedder)
    assert len(pipe.index.papers) == 5
    got = pipe.answer(real_papers[2].title)
    assert not got.abstained and got.citations[0].paper_id == real_papers[2].paper_id
    if case == "foreign collections":  # someone else's collection is left alone
        assert "notes" in {c.name for c in open_client(s).list_collections()}


def test_index_segment_files_lost_or_garbled(bundled_settings, embedder, tmp_path):
    """Chroma rebuilds its vector index from chroma.sqlite3: with the segment files garbled
    or deleted the store answers exactly as before (it is not answering from garbage)."""
    expected = answers(bundled_settings, embedder)
    for mode in ("garbled", "deleted"):
        s = copy_index(bundled_settings, tmp_path / mode)
        for seg in [p for p in (s.data_dir / "chroma").iterdir() if p.is_dir() and p.name != "lexical"]:
            if mode == "deleted":
                shutil.rmtree(seg)
            else:
                for f in seg.iterdir():
                    f.write_bytes(os.urandom(max(f.stat().st_size, 64)))
        assert answers(s, embedder) == expected


def test_a_store_killed_while_chroma_created_it_is_finished_by_the_next_ingest(tmp_path, embedder, real_papers,
                                                                                write_corpus):
    """A process killed while Chroma was creating chroma.sqlite3 leaves only the two tables
    Chroma makes before its first migration (seen in CI: `rag ingest` SIGKILLed 1 s into its
    start-up). That is Chroma's own store, not someone else's database: the next ingest lets
    Chroma finish it."""
    made = Settings(data_dir=tmp_path / "made")
    Store(open_client(made), made.embed_model)
    real = sqlite3.connect(made.data_dir / "chroma" / "chroma.sqlite3")
    bootstrap = [sql for (sql,) in real.execute(
        "SELECT sql FROM sqlite_master WHERE name IN ('migrations', 'acquire_write')")]
    real.close()
    assert len(bootstrap) == 2

    s = Settings(data_dir=tmp_path / "killed")
    (s.data_dir / "chroma").mkdir(parents=True)
    half = sqlite3.connect(s.data_dir / "chroma" / "chroma.sqlite3")
    for sql in bootstrap:
        half.execute(sql)
    half.commit()
    half.close()

    corpus = write_corpus(tmp_path / "three.jsonl", real_papers[:3])
    ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    store = Store(open_client(s, create=False), s.embed_model, create=False)
    papers, chunks = store.counts()
    assert papers == 3 and chunks >= 3


def test_no_index_yet(tmp_path, rag_cli):
    s = Settings(data_dir=tmp_path / "fresh")
    with pytest.raises(StoreError, match="run `rag ingest` first"):
        Store(open_client(s), s.embed_model, create=False)
    out = rag_cli("ask", "What is CvT?", data_dir=tmp_path / "fresh2")
    assert out.returncode == 2 and "run `rag ingest` first" in out.stderr and out.stderr.count("\n") == 1


def test_empty_index_is_refused(tmp_path, embedder):
    s = Settings(data_dir=tmp_path / "d")
    Store(open_client(s), s.embed_model)  # collections exist, nothing ingested
    with pytest.raises(StoreError, match="is empty"):
        build_pipeline(s, embedder=embedder)


def test_data_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = Settings(data_dir=blocker / "sub")
    with pytest.raises(StoreError, match="cannot create the store directory"):
        open_client(s)
