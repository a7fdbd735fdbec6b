"""`rag ingest --rebuild` never drops a user's papers: it re-reads every source the index
records (files ingested from anywhere, uploads kept in `data_dir/uploads/`), or refuses,
naming the sources whose file is gone, before anything is touched."""

from __future__ import annotations

from rag.ingest import ingest
from rag.settings import Settings
from rag.sources import add_file
from rag.store import Store, open_client


def _titles(s: Settings) -> set[str]:
    store = Store(open_client(s, create=False), s.embed_model, create=False)
    return {fields["title"] for _, fields in store.records(limit=1000)}


def test_rebuild_rereads_ingested_files_and_uploads(tmp_path, embedder, real_papers, write_corpus, rag_cli):
    s = Settings(data_dir=tmp_path / "data")
    mine = write_corpus(tmp_path / "mine" / "mine.jsonl", real_papers[:3])
    ingest([mine], s, Store(open_client(s), s.embed_model), embedder=embedder)
    download = write_corpus(tmp_path / "downloads" / "upload.jsonl", real_papers[3:5])
    add_file(s, download, embedder=embedder)
    download.unlink()  # only the kept copy in uploads/ is left
    default = write_corpus(tmp_path / "default" / "bundled.jsonl", real_papers[10:12])
    before = _titles(s)
    assert len(before) == 5

    rebuilt = rag_cli("ingest", "--rebuild", "--quiet", data_dir=s.data_dir,
                      env={"RAG_CORPUS_PATHS": str(default)})
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "re-reading the 2 source(s) the index records: mine.jsonl, upload.jsonl" in rebuilt.stderr
    assert _titles(s) == before  # every paper kept; the default corpus was never in this index


def test_rebuild_refuses_when_a_recorded_file_is_gone(tmp_path, embedder, real_papers, write_corpus, rag_cli):
    s = Settings(data_dir=tmp_path / "data")
    kept = write_corpus(tmp_path / "kept.jsonl", real_papers[:2])
    gone = write_corpus(tmp_path / "gone.jsonl", real_papers[2:4])
    ingest([kept, gone], s, Store(open_client(s), s.embed_model), embedder=embedder)
    gone.unlink()
    before = _titles(s)

    refused = rag_cli("ingest", "--rebuild", "--quiet", data_dir=s.data_dir,
                      env={"RAG_CORPUS_PATHS": str(kept)})
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "gone.jsonl" in refused.stderr and "--drop-missing" in refused.stderr and "unchanged" in refused.stderr
    assert _titles(s) == before

    dropped = rag_cli("ingest", "--rebuild", "--quiet", "--drop-missing", data_dir=s.data_dir)
    assert dropped.returncode == 0, dropped.stderr
    assert "without the papers of gone.jsonl" in dropped.stderr
    assert _titles(s) == {p.title for p in real_papers[:2]}
