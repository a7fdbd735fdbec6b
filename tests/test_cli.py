"""The `rag` entry point, run as a subprocess the way a user runs it (RAG_DATA_DIR under
tmp_path): ingest summary, stats, ask with numbered references, one-line errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from conftest import free_port
from rag.settings import Settings
from rag.store import Store, open_client


@pytest.fixture
def bundled_copy(bundled_settings, tmp_path):
    """A private copy of the bundled index: `rag ask` opens it read-write."""
    dest = tmp_path / "bundled"
    shutil.copytree(bundled_settings.data_dir, dest)
    return dest


def one_line_error(proc, expected: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.startswith("rag: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ingest_prints_summary_then_rerun_is_a_no_op(rag_cli, tmp_path, real_papers, write_corpus):
    corpus = tmp_path / "corpus"
    write_corpus(corpus / "good.jsonl", real_papers[:5])
    bad = [json.dumps({"title": real_papers[5].title, "abstract": real_papers[5].abstract}),
           "{broken", json.dumps({"title": "No abstract"})]
    (corpus / "more.jsonl").write_text("\n".join(bad) + "\n")
    data = tmp_path / "data"

    first = rag_cli("ingest", "--quiet", str(corpus), data_dir=data)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == ("files 2, papers read 6 (0 duplicates merged), new 6, updated 0, unchanged 0, skipped 2")
    assert re.match(r"chunks embedded \d+, reused 0, stale deleted 0; \d+\.\d s", lines[1])
    assert lines[2].startswith("  skipped more.jsonl:2: bad JSON (")
    assert lines[3] == "  skipped more.jsonl:3: missing abstract"
    assert re.fullmatch(rf"index: 6 papers, (\d+) chunks at {re.escape(str(data / 'chroma'))}", lines[4])
    assert "Traceback" not in first.stderr

    again = rag_cli("ingest", str(corpus), data_dir=data)  # progress bar on: nothing to embed, no bar
    assert again.returncode == 0, again.stderr
    assert "new 0, updated 0, unchanged 6, skipped 2" in again.stdout
    assert "chunks embedded 0," in again.stdout
    assert lines[4] in again.stdout

    stats = rag_cli("stats", data_dir=data)
    assert stats.returncode == 0, stats.stderr
    n_chunks = lines[4].split()[3]
    assert stats.stdout.splitlines()[:3] == ["papers: 6", f"chunks: {n_chunks}", "embedding_model: all-MiniLM-L6-v2"]
    assert "collections: ['papers-all-minilm-l6-v2', 'chunks-all-minilm-l6-v2']" in stats.stdout
    assert "  good.jsonl: 5 papers" in stats.stdout and "  more.jsonl: 1 papers" in stats.stdout

    as_json = rag_cli("stats", "--json", "--tokens", data_dir=data)
    info = json.loads(as_json.stdout)
    assert (info["papers"], info["chunks"]) == (6, int(n_chunks))
    assert info["chunks_over_window"] == 0 and 0 < info["largest_chunk_tokens"] <= 256
    assert info["sources"] == {"good.jsonl": 5, "more.jsonl": 1}


def test_ingest_batches_and_rebuild(rag_cli, tmp_path, real_papers, write_corpus):
    corpus = write_corpus(tmp_path / "p.jsonl", real_papers[100:104])
    data = tmp_path / "data"
    first = rag_cli("ingest", "--quiet", "--batch-papers", "1", str(corpus), data_dir=data)
    assert first.returncode == 0 and "new 4" in first.stdout
    before = _chunk_vectors(data)
    # The rebuild copies the live index's vectors for unchanged text and embeds only the new paper.
    corpus = write_corpus(tmp_path / "p.jsonl", real_papers[100:105])
    rebuilt = rag_cli("ingest", "--quiet", "--rebuild", str(corpus), data_dir=data)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "new 5, updated 0, unchanged 0" in rebuilt.stdout
    assert "dropped the index" in rebuilt.stderr
    after = _chunk_vectors(data)
    assert set(before) < set(after)
    assert f"chunks embedded {len(after) - len(before)}, reused {len(before)}," in rebuilt.stdout
    # Copied, not recomputed; equal to float32 rounding (Chroma normalises what it stores for cosine).
    assert all(np.allclose(before[cid], after[cid], rtol=0, atol=1e-6) for cid in before)


def _chunk_vectors(data) -> dict:
    store = Store(open_client(Settings(data_dir=data), create=False), Settings().embed_model, create=False)
    got = store.chunks.get(include=["embeddings"])
    return {cid: np.asarray(v) for cid, v in zip(got["ids"], got["embeddings"])}


def test_ask_prints_answer_and_numbered_references(rag_cli, bundled_copy):
    out = rag_cli("ask", "Which papers bridge CNNs and ViTs?", data_dir=bundled_copy)
    assert out.returncode == 0, out.stderr
    text, refs = out.stdout.split("\nReferences:\n")
    numbered = refs.strip().splitlines()
    assert numbered and all(re.fullmatch(rf"\[{i}\] .+", line) for i, line in enumerate(numbered, 1))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", text)} <= set(range(1, len(numbered) + 1))
    assert "Traceback" not in out.stderr

    as_json = json.loads(rag_cli("ask", "--json", "What is CvT?", data_dir=bundled_copy).stdout)
    assert as_json["abstained"] is False
    assert as_json["citations"][0]["title"] == "CvT: Introducing Convolutions to Vision Transformers"


def test_ask_abstains_without_references(rag_cli, bundled_copy):
    out = rag_cli("ask", "What is a good recipe for banana bread?", data_dir=bundled_copy)
    assert out.returncode == 0, out.stderr
    assert "does not cover" in out.stdout
    assert "References:" not in out.stdout


@pytest.mark.parametrize("args, env, expected", [
    (["ask", ""], {}, "the question is empty"),
    (["ask", "   "], {}, "the question is empty"),
    (["ask", "What is CvT?"], {"RAG_CHUNK_SIZE": "9999"}, "invalid setting RAG_CHUNK_SIZE"),
    (["ask", "What is CvT?"], {"RAG_EMBED_MODEL": "/nonexistent/model"}, "models are never downloaded"),
    (["stats"], {}, "run `rag ingest` first"),
    (["ingest", "/nonexistent/papers.jsonl"], {}, "no such file or directory: /nonexistent/papers.jsonl"),
    (["ingest", "--batch-papers", "0", "."], {}, "--batch-papers must be at least 1"),
    (["stats"], {"RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": "PORT"}, "cannot reach the Chroma server"),
])
def test_errors_are_one_line(rag_cli, tmp_path, args, env, expected):
    env = {k: str(free_port()) if v == "PORT" else v for k, v in env.items()}
    one_line_error(rag_cli(*args, data_dir=tmp_path / "data", env=env), expected)


def test_data_dir_is_a_file(rag_cli, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "chroma").write_text("oops")
    one_line_error(rag_cli("stats", data_dir=tmp_path / "data"), "is a file, not a directory")


def test_own_bib_filters_export_and_remove(rag_cli, tmp_path, real_papers, write_corpus):
    """`rag ingest my.bib`, then `rag ask --bib/--markdown/--year/--source`, then `rag remove`."""
    import bibtexparser

    from test_upload import BEE_TITLES, BEES, UPLOADS

    corpus = tmp_path / "corpus"
    write_corpus(corpus / "good.jsonl", real_papers[:5])
    shutil.copy(UPLOADS / "beehives.bib", corpus / "beehives.bib")
    data = tmp_path / "data"
    first = rag_cli("ingest", "--quiet", str(corpus), data_dir=data)
    assert first.returncode == 0, first.stderr
    assert "new 8" in first.stdout

    bib = rag_cli("ask", "--bib", BEES, data_dir=data)
    assert bib.returncode == 0, bib.stderr
    library = bibtexparser.parse_string(bib.stdout)
    assert not library.failed_blocks and library.entries
    titles = {e["title"] for e in library.entries}
    assert titles & BEE_TITLES
    assert all(e.key.isascii() and e["year"] in ("2021", "2022", "2023") for e in library.entries)

    md = rag_cli("ask", "--markdown", BEES, data_dir=data)
    assert md.returncode == 0 and md.stdout.startswith(f"## {BEES}") and "### References" in md.stdout

    none = rag_cli("ask", "--year", "1990-1995", BEES, data_dir=data)
    assert none.returncode == 0, none.stderr
    assert "matches the filter (year 1990-1995)" in none.stdout and "References:" not in none.stdout
    only = rag_cli("ask", "--json", "--source", "beehives.bib", "--year", "2022-", BEES, data_dir=data)
    cited = {c["title"] for c in json.loads(only.stdout)["citations"]}
    assert cited and cited <= BEE_TITLES  # 2022 and 2023; the 2021 varroa paper is out
    one_line_error(rag_cli("ask", "--year", "abc", BEES, data_dir=data), "--year: year must look like 2021")

    removed = rag_cli("remove", "beehives.bib", data_dir=data)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == "removed beehives.bib: 3 papers"
    info = json.loads(rag_cli("stats", "--json", data_dir=data).stdout)
    assert info["papers"] == 5 and info["sources"] == {"good.jsonl": 5}
    one_line_error(rag_cli("remove", "beehives.bib", data_dir=data), "no source named 'beehives.bib'")
