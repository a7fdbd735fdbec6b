"""The persistent lexical index (tantivy): incremental updates through `ingest` (add, change,
delete: counts and results right), the same analyser and statistics as before, a missing or
damaged index detected and rebuilt, and a serving process seeing later ingests."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from rag.errors import StoreError
from rag.ingest import ingest, rebuild_lexical, remove_source
from rag.lexical import LexicalIndex
from rag.lexical_store import lexical_dir, open_lexical
from rag.pipeline import build_pipeline
from rag.retrieval import Index
from rag.settings import Settings
from rag.store import Store, open_client
from rag.text import terms


def _store(s: Settings) -> Store:
    return Store(open_client(s), s.embed_model)


def _chunks(store: Store) -> dict[str, str]:
    got = store.chunks.get(include=["metadatas"])
    return {cid: m["paper_id"] for cid, m in zip(got["ids"], got["metadatas"])}


def test_add_change_delete_keep_lexical_equal_to_the_store(tmp_path, embedder, real_papers, write_corpus):
    s = Settings(data_dir=tmp_path / "data")
    first = write_corpus(tmp_path / "a.jsonl", real_papers[:6])
    ingest([first], s, _store(s), embedder=embedder)
    store = _store(s)
    lex = open_lexical(store)
    assert lex.chunk_ids() == _chunks(store) and lex.num_papers == 6

    # Add: three more papers from another file; an unchanged rerun adds nothing.
    second = write_corpus(tmp_path / "b.jsonl", real_papers[6:9])
    ingest([first, second], s, store, embedder=embedder)
    lex.reload()
    assert lex.chunk_ids() == _chunks(store) and lex.num_papers == 9
    target = real_papers[7]
    hits = lex.search(terms(target.title), 5)
    assert hits and hits[0][1] == target.paper_id

    # Change: paper 2's abstract replaced by paper 40's; its old words no longer find it.
    edited = replace(real_papers[2], abstract=real_papers[40].abstract)
    report = ingest([write_corpus(tmp_path / "a.jsonl", [edited])], s, store, embedder=embedder)
    assert report.updated == 1
    lex.reload()
    assert lex.chunk_ids() == _chunks(store)
    old_words = [t for t in terms(real_papers[2].abstract) if t not in terms(real_papers[40].abstract)
                 and t not in terms(real_papers[2].title)]
    found = {pid for _, pid, _ in lex.search(old_words, 50)}
    assert real_papers[2].paper_id not in found
    assert real_papers[2].paper_id in {pid for _, pid, _ in lex.search(terms(real_papers[40].abstract)[:12], 5)}

    # Delete: removing file b removes its three papers everywhere.
    assert remove_source(s, "b.jsonl", store) == 3
    lex.reload()
    assert lex.chunk_ids() == _chunks(store) and lex.num_papers == 6
    assert store.papers.count() == 6 and "b.jsonl" not in store.sources()
    assert target.paper_id not in {pid for _, pid, _ in lex.search(terms(target.title), 20)}


def test_statistics_come_from_the_index(tmp_path, embedder, real_papers, write_corpus):
    s = Settings(data_dir=tmp_path / "data")
    papers = real_papers[:20]
    ingest([write_corpus(tmp_path / "a.jsonl", papers)], s, _store(s), embedder=embedder)
    index = Index(_store(s), embedder)
    got = _store(s).chunks.get(include=["documents"])
    tokenized = [set(terms(d)) for d in got["documents"]]
    assert index.idf.n == len(tokenized) == index.chunk_count
    for term in ("transform", "imag", "learn", "zzzunseen"):
        assert index.lexical_index.doc_freq(term) == sum(term in t for t in tokenized)
    assert "transform" in index.idf and "zzzunseen" not in index.idf
    assert len(index) == 20 and index.paper(papers[3].paper_id).title == papers[3].title
    assert index.paper("no-such-paper") is None and "no-such-paper" not in index.papers


def test_missing_or_damaged_index_is_rebuilt(tmp_path, embedder, real_papers, write_corpus, rag_cli):
    s = Settings(data_dir=tmp_path / "data")
    ingest([write_corpus(tmp_path / "a.jsonl", real_papers[:8])], s, _store(s), embedder=embedder)
    store = _store(s)
    path = lexical_dir(store)
    expected = _chunks(store)
    question = real_papers[5].title

    # Missing, small: rebuilt at open, and it answers as before.
    shutil.rmtree(path)
    pipe = build_pipeline(s, embedder=embedder)
    assert pipe.index.lexical_index.chunk_ids() == expected
    assert pipe.retrieve(question, k=1)[0].paper_id == real_papers[5].paper_id

    # Damaged (meta.json garbled): detected; above the automatic size, one clear error naming the command.
    (path / "chunks" / "meta.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"damaged.*rag ingest --rebuild-lexical"):
        open_lexical(store, auto_rebuild_chunks=0)
    shutil.rmtree(path)
    with pytest.raises(StoreError, match=r"missing.*rag ingest --rebuild-lexical"):
        open_lexical(store, auto_rebuild_chunks=0)

    # The command rebuilds it from the vector store.
    out = rag_cli("ingest", "--rebuild-lexical", "--quiet", data_dir=s.data_dir)
    assert out.returncode == 0 and "8 papers" in out.stdout, out.stdout + out.stderr
    assert LexicalIndex(path).chunk_ids() == expected
    assert rebuild_lexical(store) == 8


def test_phantom_lexical_docs_of_an_uncommitted_paper_are_not_answered(tmp_path, embedder, real_papers,
                                                                       write_corpus):
    """An ingest that dies after the lexical commit but before the paper record leaves lexical
    documents of a paper that does not exist yet: searches drop them."""
    from rag.lexical import chunk_docs, name_record

    s = Settings(data_dir=tmp_path / "data")
    ingest([write_corpus(tmp_path / "a.jsonl", real_papers[:4])], s, _store(s), embedder=embedder)
    index = Index(_store(s), embedder)
    ghost = real_papers[50]
    index.lexical_index.replace([ghost], chunk_docs([(f"{ghost.paper_id}:x", ghost.paper_id, ghost.title)]),
                                [name_record(ghost)])
    index.lexical_index.close()
    from rag.pipeline import search_params

    ranking = index.search(ghost.title, search_params(s))
    assert ghost.paper_id not in [src.paper_id for src in ranking.sources]
    assert index.lexical_index.search(terms(ghost.title), 1)[0][1] == ghost.paper_id  # it is there, unanswered


_WRITER = """
import sys
from pathlib import Path
from rag.lexical import ChunkDoc, LexicalIndex
from rag.models import Paper

lex = LexicalIndex(Path(sys.argv[1]), create=True)
for batch in range(int(sys.argv[2])):
    papers = [Paper(paper_id=f"p{batch}-{i}", title=f"title {batch} {i}", abstract="x" * 60) for i in range(50)]
    docs = [ChunkDoc(f"{p.paper_id}:{j}", p.paper_id, f"word{batch} common term{j} " * 20) for p in papers
            for j in range(3)]
    lex.replace(papers, docs, [{"paper_id": p.paper_id, "words": p.title} for p in papers])
    print(batch, flush=True)
lex.close()
"""


def test_kill_during_lexical_updates_then_rerun(tmp_path):
    """SIGKILL a process in the middle of a stream of lexical commits: the index still opens,
    holds whole batches only (each commit is atomic), and a rerun completes it exactly."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "lex"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "200"], stdout=subprocess.PIPE, text=True)
    for _ in range(5):  # let it commit a few batches, then kill it mid-stream
        proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    lex = LexicalIndex(path)  # opens: not damaged
    ids = lex.chunk_ids()
    batches = {pid.split("-")[0] for pid in ids.values()}
    assert 5 <= len(batches) < 200
    for b in batches:  # whole batches only: 50 papers x 3 chunks
        assert sum(1 for pid in ids.values() if pid.startswith(f"{b}-")) == 150
    done = subprocess.run([sys.executable, "-c", _WRITER, str(path), "200"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    lex.reload()
    assert lex.num_docs == 200 * 150 and lex.num_papers == 200 * 50
    assert len(lex.search(["word7"], 1000)) == 150


def _bm25_from_scratch(lex: LexicalIndex, q_terms: list[str]) -> dict[str, float]:
    """Every chunk's BM25 (bm25s' "lucene", as `LexicalIndex.search` documents it) from the
    stored chunk bodies, with the index's own statistics (document frequencies, mean length):
    no rescoring pool, no counts kept from an earlier search."""
    import math

    import tantivy

    from rag.lexical import K1, B

    searcher = lex.chunks.searcher()
    hits = searcher.search(tantivy.Query.all_query(), lex.num_docs, count=False).hits
    bodies = {d.get_first("chunk_id"): d.get_first("body").split(" ") for d in (searcher.doc(a) for _, a in hits)}
    avgdl = lex._avgdl(searcher, hits[0][1])
    weights = {t: q_terms.count(t) * math.log(1 + (lex.num_docs - lex.doc_freq(t) + 0.5) / (lex.doc_freq(t) + 0.5))
               for t in dict.fromkeys(q_terms)}
    out = {}
    for cid, words in bodies.items():
        norm = K1 * (1 - B + B * len(words) / avgdl)
        if any(t in words for t in weights):
            out[cid] = sum(w * words.count(t) / (words.count(t) + norm) for t, w in weights.items() if t in words)
    return out


def test_bm25_scores_stay_exact_with_counts_kept_between_searches_and_reloads(tmp_path, embedder, real_papers,
                                                                             write_corpus):
    # `search` keeps each rescored chunk's term counts until the next reload; a repeated search
    # and one after an ingest that changed the chunks (other documents at the same addresses)
    # must both score exactly what the stored chunks say.
    s = Settings(data_dir=tmp_path / "data")
    corpus = write_corpus(tmp_path / "a.jsonl", real_papers[:12])
    ingest([corpus], s, _store(s), embedder=embedder)
    store = _store(s)
    lex = open_lexical(store)
    queries = [terms(real_papers[i].title + " " + real_papers[i].abstract[:120]) for i in (1, 5, 9)]

    def check() -> None:
        for q in queries:
            expected = _bm25_from_scratch(lex, q)
            got = {cid: score for cid, _, score in lex.search(q, 100)}
            assert got.keys() == expected.keys()
            assert got == pytest.approx(expected, rel=1e-6)

    check()
    check()  # counts kept from the first searches
    # Another file's papers in place of these: their chunks come in new segments and the old
    # segments go, so the same document addresses now name other chunks.
    assert remove_source(s, "a.jsonl", store) == 12
    ingest([write_corpus(tmp_path / "b.jsonl", real_papers[20:32])], s, store, embedder=embedder)
    lex.reload()
    queries = [terms(real_papers[i].title + " " + real_papers[i].abstract[:120]) for i in (21, 25, 29)] + queries
    check()
