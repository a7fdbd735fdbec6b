"""A serving process (this test process, holding a pipeline) keeps answering while another
process ingests into or rebuilds the store under it, and it answers from what the store holds
now: papers ingested later are found, a replaced abstract is never quoted again, and a
`rag ingest --rebuild` (which drops the collections it had open) is survived by reopening.
"""

from __future__ import annotations

from dataclasses import replace

from rag.ingest import ingest
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import Store, open_client


def _index(tmp_path, embedder, papers, write_corpus) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    ingest([write_corpus(tmp_path / "corpus.jsonl", papers)], s, Store(open_client(s), s.embed_model),
           embedder=embedder)
    return s


def _sources(pipe, question: str) -> list[str]:
    return [src.paper.paper_id for src in pipe.retrieve(question, k=3)]


def test_later_ingest_is_seen_and_replaced_text_never_quoted(tmp_path, embedder, real_papers, write_corpus,
                                                             rag_cli):
    s = _index(tmp_path, embedder, real_papers[:5], write_corpus)
    pipe = build_pipeline(s, embedder=embedder)
    newcomer = real_papers[40]
    assert newcomer.paper_id not in pipe.index.papers

    added = rag_cli("ingest", "--quiet", str(write_corpus(tmp_path / "corpus.jsonl", real_papers[:5] + [newcomer])),
                    data_dir=s.data_dir)
    assert added.returncode == 0, added.stderr
    assert _sources(pipe, newcomer.title)[0] == newcomer.paper_id  # dense and BM25 both see it
    bm25 = s.with_overrides({"retrieval_mode": "bm25"})
    assert pipe.retrieve(newcomer.title, k=1, settings=bm25)[0].paper_id == newcomer.paper_id  # the lexical reload
    assert newcomer.paper_id in pipe.index.papers

    # The same paper, same file, with another abstract: an edit that replaces the old text.
    edited = replace(real_papers[1], abstract=real_papers[41].abstract)
    old_sentences = pipe.index.sentences(real_papers[1].paper_id)
    changed = rag_cli("ingest", "--quiet", str(write_corpus(tmp_path / "corpus.jsonl", [real_papers[0], edited])),
                      data_dir=s.data_dir)
    assert changed.returncode == 0 and "updated 1" in changed.stdout, changed.stdout + changed.stderr
    got = pipe.answer(real_papers[1].title)
    assert all(sentence not in got.text for sentence in old_sentences)
    assert pipe.index.papers[real_papers[1].paper_id].abstract == real_papers[41].abstract
    assert pipe.index.sentences(real_papers[1].paper_id) != old_sentences


def test_spelling_follows_a_later_ingest(tmp_path, embedder, real_papers, write_corpus, rag_cli):
    """"fewshot" stays one word while no paper writes "few-shot", and is read as "few-shot"
    once another process ingests one that does: the speller's cached counts are the index's
    of the moment, not of the first question."""
    def says_few_shot(p):
        return "few-shot" in f"{p.title} {p.abstract}".lower() or "few shot" in f"{p.title} {p.abstract}".lower()

    base = [p for p in real_papers if not says_few_shot(p)][:5]
    newcomer = next(p for p in real_papers if says_few_shot(p))
    s = _index(tmp_path, embedder, base, write_corpus)
    pipe = build_pipeline(s, embedder=embedder)
    assert pipe.speller.correct("fewshot classification") == "fewshot classification"

    added = rag_cli("ingest", "--quiet", str(write_corpus(tmp_path / "corpus.jsonl", base + [newcomer])),
                    data_dir=s.data_dir)
    assert added.returncode == 0, added.stderr
    pipe.answer("fewshot classification")  # a question reloads the index
    assert pipe.speller.correct("fewshot classification") == "few-shot classification"


def test_rebuild_under_a_serving_process(tmp_path, embedder, real_papers, write_corpus, rag_cli):
    s = _index(tmp_path, embedder, real_papers[:5], write_corpus)
    pipe = build_pipeline(s, embedder=embedder)
    assert not pipe.answer(real_papers[2].title).abstained
    version = pipe.index.version

    other = write_corpus(tmp_path / "other.jsonl", real_papers[20:24])
    rebuilt = rag_cli("ingest", "--rebuild", "--quiet", str(other), data_dir=s.data_dir)
    assert rebuilt.returncode == 0, rebuilt.stderr

    got = pipe.answer(real_papers[21].title)  # no NotFoundError: the index reopened
    assert pipe.index.version > version
    # The recorded source corpus.jsonl is re-read too (a rebuild never drops a user's papers).
    assert set(pipe.index.papers) == {p.paper_id for p in real_papers[:5] + real_papers[20:24]}
    assert got.citations and got.citations[0].paper_id == real_papers[21].paper_id
    assert pipe.index.refresh() is False  # nothing changed since


def test_a_second_host_on_a_chroma_server_sees_later_ingests(tmp_path, embedder, real_papers, write_corpus,
                                                             chroma_server, rag_cli):
    """Two query hosts (two data dirs, each with its own lexical cache) on one server: papers
    another process ingests, edits and removes reach host B's lexical index through the
    server's ingest log, without a restart."""
    from rag.ingest import remove_source

    host, port = chroma_server
    server = {"RAG_CHROMA_HOST": host, "RAG_CHROMA_PORT": str(port)}
    a = Settings(data_dir=tmp_path / "host-a", chroma_host=host, chroma_port=port)
    b = Settings(data_dir=tmp_path / "host-b", chroma_host=host, chroma_port=port)
    ingest([write_corpus(tmp_path / "corpus.jsonl", real_papers[:5])], a, Store(open_client(a), a.embed_model),
           embedder=embedder)
    pipe = build_pipeline(b, embedder=embedder)  # host B derives its copy from the server
    bm25 = b.with_overrides({"retrieval_mode": "bm25"})
    newcomer = real_papers[40]

    added = rag_cli("ingest", "--quiet", str(write_corpus(tmp_path / "new.jsonl", [newcomer])),
                    data_dir=a.data_dir, env=server)
    assert added.returncode == 0, added.stderr
    assert pipe.retrieve(newcomer.title, k=1, settings=bm25)[0].paper_id == newcomer.paper_id
    assert pipe.retrieve(newcomer.title, k=1)[0].paper_id == newcomer.paper_id

    edited = replace(real_papers[1], abstract=real_papers[41].abstract)
    changed = rag_cli("ingest", "--quiet", str(write_corpus(tmp_path / "corpus.jsonl", [edited])),
                      data_dir=a.data_dir, env=server)
    assert changed.returncode == 0 and "updated 1" in changed.stdout, changed.stdout + changed.stderr
    hits = pipe.retrieve(real_papers[41].title + " " + real_papers[41].abstract[:200], k=2, settings=bm25)
    assert real_papers[1].paper_id in [h.paper_id for h in hits]

    assert remove_source(a, "new.jsonl") == 1
    assert newcomer.paper_id not in [h.paper_id for h in pipe.retrieve(newcomer.title, k=5, settings=bm25)]
    lexical = pipe.index.lexical_index
    assert newcomer.paper_id not in set(lexical.chunk_ids().values())
    assert set(lexical.chunk_ids()) == set(Store(open_client(b), b.embed_model).chunks.get(include=[])["ids"])
