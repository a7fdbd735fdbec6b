"""Incremental ingestion against a real Chroma: an embedded store under tmp_path, and a real
`chroma run` server. Counts, idempotent re-runs (a spy embedder proves nothing is embedded),
edits that replace their chunks, and bad files that lose nothing.
"""

from __future__ import annotations

import gzip
import json

import pytest

from rag.chunking import Chunker
from rag.corpus import content_hash, load_papers, paper_id_for
from rag.embedding import TokenCounter
from rag.ingest import ingest
from rag.models import Paper
from rag.settings import BUNDLED_CORPUS, Settings
from rag.store import Store, open_client


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.chroma_server)])
def settings(request, tmp_path) -> Settings:
    if request.param == "server":
        host, port = request.getfixturevalue("chroma_server")
        return Settings(data_dir=tmp_path / "unused", chroma_host=host, chroma_port=port)
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    s = Settings()
    return Chunker(TokenCounter(s.embed_model), s.chunk_size, s.chunk_overlap)


def open_store(settings: Settings) -> Store:
    return Store(open_client(settings), settings.embed_model)


def stored_papers(store: Store) -> dict[str, tuple[str, str]]:
    """paper_id -> (abstract, content hash)."""
    return {pid: (f["abstract"], f["content_hash"]) for pid, f in store.records()}


def stored_chunks(store: Store) -> dict[str, set[str]]:
    """paper_id -> its chunk ids; also checks that no chunk id is stored twice."""
    got = store.chunks.get(include=["metadatas"])
    assert len(got["ids"]) == len(set(got["ids"]))
    out: dict[str, set[str]] = {}
    for cid, meta in zip(got["ids"], got["metadatas"]):
        out.setdefault(meta["paper_id"], set()).add(cid)
    return out


def expected_chunks(papers: list[Paper], chunker: Chunker) -> dict[str, set[str]]:
    return {p.paper_id: {c.chunk_id for c in chunker.chunks(p)} for p in papers}


def test_counts_and_idempotent_rerun(settings, tmp_path, real_papers, write_corpus, counting_embedder, chunker):
    a = write_corpus(tmp_path / "corpus" / "a.jsonl", real_papers[:12])
    # b.txt: two papers of a.jsonl again (exact duplicates) and two new ones, Daily Papers layout.
    b = tmp_path / "corpus" / "b.txt"
    b.write_text("\n\n".join(x for p in real_papers[10:14] for x in (p.title, p.abstract)), encoding="utf-8")
    papers, _ = load_papers([tmp_path / "corpus"])
    assert len(papers) == 14

    store = open_store(settings)
    report = ingest([tmp_path / "corpus"], settings, store, embedder=counting_embedder)
    assert (report.files, report.read, report.duplicates) == (2, 16, 2)
    assert (report.new, report.updated, report.unchanged, report.skipped) == (14, 0, 0, [])
    want = expected_chunks(papers, chunker)
    n_chunks = sum(map(len, want.values()))
    assert store.counts() == (14, n_chunks)
    assert stored_chunks(store) == want
    assert counting_embedder.texts == report.chunks_embedded == n_chunks
    assert stored_papers(store) == {p.paper_id: (p.abstract, content_hash(p)) for p in papers}
    assert store.sources() == {"a.jsonl": 12, "b.txt": 2}

    counting_embedder.calls = counting_embedder.texts = 0
    again = ingest([a, b], settings, open_store(settings), embedder=counting_embedder)
    assert counting_embedder.calls == 0
    assert (again.new, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 14, 0)
    assert (again.read, again.duplicates) == (16, 2)
    assert store.counts() == (14, n_chunks)
    assert stored_chunks(store) == want


def test_changed_abstract_replaces_its_chunks(settings, tmp_path, real_papers, write_corpus, counting_embedder,
                                              chunker):
    papers = real_papers[20:26]
    path = write_corpus(tmp_path / "p.jsonl", papers, extra={papers[3].title: {"id": "paper-3"}})
    store = open_store(settings)
    first = ingest([path], settings, store, embedder=counting_embedder)
    assert first.new == 6
    old_docs = set(store.chunks.get(include=["documents"])["documents"])

    # Edit two abstracts in place: one paper known by its title, one by its id.
    edited = list(papers)
    half = papers[1].abstract[: len(papers[1].abstract) // 2]
    edited[1] = Paper(paper_id="", title=papers[1].title, abstract="Rewritten. " + half)
    edited[3] = Paper(paper_id="", title=papers[3].title, abstract=papers[3].abstract + " We also release our code.")
    write_corpus(path, edited, extra={papers[3].title: {"id": "paper-3"}})
    counting_embedder.calls = counting_embedder.texts = 0
    report = ingest([path], settings, store, embedder=counting_embedder)
    assert (report.new, report.updated, report.unchanged) == (0, 2, 4)
    assert counting_embedder.texts == report.chunks_embedded > 0

    now, _ = load_papers([path])
    assert [p.paper_id for p in now][1] == paper_id_for(papers[1].title)
    assert [p.paper_id for p in now][3] == "id:paper-3"
    want = expected_chunks(now, chunker)
    assert stored_chunks(store) == want  # no stale chunk of the old abstracts is left
    assert store.counts() == (6, sum(map(len, want.values())))
    assert report.stale_chunks_deleted == len(old_docs - set(store.chunks.get(include=["documents"])["documents"]))
    assert stored_papers(store)[paper_id_for(papers[1].title)][0] == edited[1].abstract
    assert stored_papers(store)["id:paper-3"][0] == edited[3].abstract


def test_bad_file_after_a_good_one_loses_nothing(settings, tmp_path, real_papers, write_corpus, counting_embedder,
                                                 chunker):
    good = write_corpus(tmp_path / "good" / "good.jsonl", real_papers[30:38])
    store = open_store(settings)
    ingest([good], settings, store, embedder=counting_embedder)
    before_papers, before_chunks = stored_papers(store), stored_chunks(store)
    assert len(before_papers) == 8

    bad = tmp_path / "bad"
    bad.mkdir()
    lines = [
        json.dumps({"title": real_papers[40].title, "abstract": real_papers[40].abstract}),  # 1 good, new
        "{not json",  # 2
        json.dumps({"title": real_papers[30].title}),  # 3 missing abstract
        json.dumps({"title": real_papers[31].title, "abstract": real_papers[31].abstract}),  # 4 duplicate content
        # 5: same title as a stored paper, other text, other file: a second version, not an overwrite
        json.dumps({"title": real_papers[32].title, "abstract": "Garbled export of this paper. " * 4}),
        json.dumps({"title": "Huge", "abstract": "word " * 210_000}),  # 6 too long
        json.dumps({"title": real_papers[41].title, "abstract": real_papers[41].abstract})[:50],  # 7 truncated
    ]
    (bad / "bad.jsonl").write_text("\n".join(lines), encoding="utf-8")
    (bad / "latin1.txt").write_bytes(f"Caf\xe9 Networks\n\n{real_papers[42].abstract}\n".encode("latin-1"))
    (bad / "empty.csv").write_text("")
    (bad / "nocols.csv").write_text(f"name,text\n\"{real_papers[43].title}\",\"{real_papers[43].abstract}\"\n")
    report = ingest([bad], settings, store, embedder=counting_embedder)

    after = stored_papers(store)
    for pid, content in before_papers.items():  # every good paper is still there, unchanged
        assert after[pid] == content
    chunks = stored_chunks(store)
    for pid, ids in before_chunks.items():
        assert chunks[pid] == ids
    v2 = paper_id_for(real_papers[32].title, 2)
    assert set(after) == set(before_papers) | {paper_id_for(real_papers[40].title), v2}
    assert after[v2][0] == clean_text("Garbled export of this paper. " * 4)

    assert (report.new, report.updated, report.unchanged, report.duplicates) == (2, 0, 1, 0)
    where = sorted((s.file, s.line) for s in report.skipped)
    assert where == [("bad.jsonl", 2), ("bad.jsonl", 3), ("bad.jsonl", 6), ("bad.jsonl", 7),
                     ("empty.csv", 0), ("latin1.txt", 1), ("nocols.csv", 2)]
    assert all(s.reason for s in report.skipped)
    # records = read + skipped records; read = ingested (new+updated+unchanged) + duplicates
    assert report.read == report.distinct + report.duplicates == 3
    assert report.read + report.skipped_records == 7 + 1 + 1
    assert store.counts()[0] == 10
    added = [Paper(paper_id_for(real_papers[40].title), real_papers[40].title, real_papers[40].abstract),
             Paper(v2, real_papers[32].title, after[v2][0])]
    assert chunks == expected_chunks(load_papers([good])[0] + added, chunker)


def clean_text(text: str) -> str:
    return " ".join(text.split())


def test_versions_from_two_files_across_runs(settings, tmp_path, real_papers, write_corpus, counting_embedder):
    """The same title with two abstracts in two files, ingested one file per run: both stay
    (like the bundled FCN pair), and a run over both files afterwards changes nothing."""
    title = real_papers[50].title
    v1 = Paper("", title, real_papers[50].abstract)
    v2 = Paper("", title, real_papers[51].abstract)
    a = write_corpus(tmp_path / "a.jsonl", [v1])
    b = write_corpus(tmp_path / "b.jsonl", [v2])
    store = open_store(settings)
    assert ingest([a], settings, store, embedder=counting_embedder).new == 1
    assert ingest([b], settings, store, embedder=counting_embedder).new == 1
    docs = stored_papers(store)
    assert {docs[paper_id_for(title)][0], docs[paper_id_for(title, 2)][0]} == {v1.abstract, v2.abstract}
    calls = counting_embedder.calls
    both = ingest([b, a], settings, store, embedder=counting_embedder)
    assert (both.new, both.updated, both.unchanged) == (0, 0, 2)
    assert counting_embedder.calls == calls
    assert store.counts()[0] == 2


def test_batches_commit_independently(settings, tmp_path, real_papers, write_corpus, counting_embedder, chunker):
    path = write_corpus(tmp_path / "p.jsonl", real_papers[60:67])
    store = open_store(settings)
    report = ingest([path], settings, store, embedder=counting_embedder, batch_papers=2)
    papers, _ = load_papers([path])
    assert report.new == 7
    assert stored_chunks(store) == expected_chunks(papers, chunker)
    with pytest.raises(ValueError, match="at least 1"):
        ingest([path], settings, store, embedder=counting_embedder, batch_papers=0)


def test_progress_total_is_counted_before_ingesting(tmp_path, real_papers, write_corpus):
    """The bar's total is the input's record count, known before the first batch (it used to
    grow one batch at a time, so the bar sat at 94-100 % with no ETA)."""
    from rag.corpus import PaperStream
    from rag.formats.count import count_records
    from rag.ingest import _Progress

    jsonl = write_corpus(tmp_path / "a.jsonl", real_papers[:7])
    jsonl.write_text(jsonl.read_text() + "\n\n")  # blank lines are not records
    csv = tmp_path / "b.csv"
    csv.write_text("title,abstract\n" + "".join(f"T{i},An abstract about topic {i}.\n" for i in range(4)))
    assert count_records([jsonl]) == 7
    assert count_records([jsonl, csv]) == 11
    stream = PaperStream([BUNDLED_CORPUS])
    yielded = sum(1 for _ in stream)
    assert count_records(stream.files) == yielded + stream.duplicates + sum(1 for s in stream.skipped if s.line > 0)
    # A gzipped file is counted too (the bar had no total for it: the ingest's own counter skipped .gz).
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    bar = _Progress(True, [gz, csv])
    assert bar.bar.total == 11
    bar.close()
