"""Paper records in both layouts (`rag.store`, module docstring): a store written before
layout 2 (a papers collection without `paper_layout`) is still read, updated and answered
from; a new store writes the lean layout (a one-dimensional placeholder vector, the fields as
one JSON string); both hold the same papers and give the same mean vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.embedding import model_slug
from rag.ingest import ingest
from rag.lexical_store import open_lexical
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import SCHEMA, Store, mean_vector, open_client

N = 12


def _write(path, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"title": t, "abstract": a}) + "\n" for t, a in rows), encoding="utf-8")


def _store(settings: Settings, layout: int) -> Store:
    client = open_client(settings)
    if layout == 1:  # the papers collection as stores made before layout 2 created it
        client.create_collection(f"papers-{model_slug(settings.embed_model)}", embedding_function=None, metadata={
            "rag_schema": SCHEMA, "embed_model": settings.embed_model, "hnsw:space": "cosine",
            "hnsw:search_ef": 256, "hnsw:construction_ef": 256})
    return Store(client, settings.embed_model)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, real_papers, embedder):
    root = tmp_path_factory.mktemp("layouts")
    corpus = root / "papers.jsonl"
    _write(corpus, [(p.title, p.abstract) for p in real_papers[:N]])
    out = {}
    for layout in (1, 2):
        settings = Settings(data_dir=root / f"layout{layout}")
        store = _store(settings, layout)
        report = ingest([corpus], settings, store, embedder=embedder)
        assert report.new == N, report.summary()
        out[layout] = (settings, store)
    return out, corpus


def test_new_stores_write_the_lean_layout(stores):
    (_, old), (_, new) = stores[0][1], stores[0][2]
    assert (old.paper_layout, new.paper_layout) == (1, 2)
    lean = new.papers.get(include=["embeddings", "documents", "metadatas"], limit=N)
    assert np.asarray(lean["embeddings"]).shape == (N, 1)
    assert lean["documents"] == [None] * N
    assert all(set(m) == {"paper", "source"} for m in lean["metadatas"])
    full = old.papers.get(include=["embeddings", "documents"], limit=N)
    assert np.asarray(full["embeddings"]).shape == (N, 384) and all(full["documents"])


def test_both_layouts_hold_the_same_papers_and_vectors(stores, real_papers):
    (_, old), (_, new) = stores[0][1], stores[0][2]
    old_records, new_records = dict(old.records()), dict(new.records())
    assert old_records == new_records and len(new_records) == N
    assert {f["abstract"] for f in new_records.values()} == {p.abstract for p in real_papers[:N]}
    ids = sorted(new_records)
    old_means, new_means = old.paper_vectors(ids), new.paper_vectors(ids)
    stored = old.papers.get(ids=ids, include=["embeddings"])
    for pid, vec in zip(stored["ids"], stored["embeddings"]):
        # Layout 1 stored the mean at ingest; computed from the chunks it is the same vector.
        assert np.allclose(old_means[pid], vec, atol=1e-6)
        assert np.allclose(new_means[pid], vec, atol=1e-6)


def test_feedback_vectors_read_by_chunk_id_are_the_papers_means(stores):
    """Feedback reads the top papers' chunk vectors by the ids the lexical index holds
    (a metadata-filtered get scans at scale); a paper whose ids are not given is read by its
    paper_id metadata. Either way: the mean of every chunk of the paper, in both layouts."""
    for layout in (1, 2):
        _, store = stores[0][layout]
        ids = sorted(dict(store.records()))
        lexical = open_lexical(store)
        try:
            chunk_ids = lexical.chunks_of(ids + ["no-such-paper"])
        finally:
            lexical.close()
        held: dict[str, set[str]] = {}
        rows = store.chunks.get(include=["metadatas"])
        for cid, meta in zip(rows["ids"], rows["metadatas"]):
            held.setdefault(meta["paper_id"], set()).add(cid)
        assert {pid: set(cids) for pid, cids in chunk_ids.items()} == held and len(held) == N
        assert any(len(cids) > 1 for cids in held.values())  # a mean of several chunks is checked
        by_metadata = store.paper_vectors(ids)
        by_id = store.paper_vectors(ids, [cid for pid in ids for cid in chunk_ids[pid]])
        mixed = store.paper_vectors(ids, [cid for pid in ids[: N // 2] for cid in chunk_ids[pid]])
        assert set(by_metadata) == set(by_id) == set(mixed) == set(ids)
        for pid in ids:
            assert np.array_equal(by_id[pid], by_metadata[pid]) and np.array_equal(mixed[pid], by_metadata[pid])
        stored = store.chunks.get(ids=sorted(held[ids[0]]), include=["embeddings", "metadatas"])
        chunks = sorted(zip(stored["metadatas"], stored["embeddings"]), key=lambda mv: mv[0]["index"])
        assert np.allclose(by_id[ids[0]], mean_vector([np.asarray(v, np.float32) for _, v in chunks]), atol=1e-7)


def test_an_old_layout_store_is_still_updated_and_answered(stores, tmp_path, real_papers, embedder):
    (settings, old) = stores[0][1]
    first = real_papers[0]
    changed = tmp_path / "papers.jsonl"  # the same file name: the same source
    _write(changed, [(first.title, first.abstract + " We also release the code.")]
           + [(p.title, p.abstract) for p in real_papers[1:N]])
    report = ingest([changed], settings, old, embedder=embedder)
    assert (report.updated, report.unchanged) == (1, N - 1), report.summary()
    assert Store(open_client(settings), settings.embed_model).paper_layout == 1  # not converted in place
    records = dict(old.records())
    assert sum(f["abstract"].endswith("We also release the code.") for f in records.values()) == 1
    answer = build_pipeline(settings, embedder=embedder).answer(first.title)
    assert not answer.abstained
    assert any(records[c.paper_id]["title"] == first.title for c in answer.citations)
