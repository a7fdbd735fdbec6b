"""Pure retrieval steps (fusion, cut-off, text analysis) on worked examples, and the
hybrid index's behaviour on the real bundled index."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.extractive import Extractive
from rag.models import Paper, Source
from rag.question_model import QuestionModel
from rag.retrieval import SearchParams, expanded_query, relative_fusion, rrf, select
from rag.text import Idf, markers, query_terms, sentences, strip_markers, support_score, terms


def src(pid: str, score: float) -> Source:
    return Source(paper=Paper(paper_id=pid, title=pid, abstract="x" * 60), score=score)


def test_relative_fusion_keeps_gaps_and_averages_runs():
    fused = relative_fusion([{"a": 0.9, "b": 0.5, "c": 0.7}, {"a": 3.0, "c": 1.0}])
    assert fused == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.25})
    assert relative_fusion([{}, {}]) == {}
    assert relative_fusion([{"a": 2.0}]) == {"a": 1.0}


def test_a_weak_dense_run_is_scaled_against_a_full_match():
    """Min-max alone puts a near-random dense run's best paper at 1 and lets it outweigh the
    paper BM25 finds by the question's own word; scaled against `dense_full` it does not."""
    dense, lexical = {"noise": 0.16, "hit": 0.02}, {"hit": 2.3}
    assert max(relative_fusion([dense, lexical], 0.7).items(), key=lambda kv: kv[1])[0] == "noise"
    fused = relative_fusion([dense, lexical], 0.7, dense_full=0.5)
    assert fused == pytest.approx({"noise": 0.7 * 0.14 / 0.48, "hit": 0.3})
    # A dense run that reaches a full match is min-max scaled as before.
    strong = {"a": 0.8, "b": 0.4}
    assert relative_fusion([strong, {}], 0.7, dense_full=0.5) == relative_fusion([strong, {}], 0.7)


def test_a_short_question_keeps_its_say_against_the_expansion_terms():
    assert expanded_query(["mscoco"], ["caption"] * 8) == ["mscoco"] * 4 + ["caption"] * 8
    assert expanded_query(["a", "b"], list("vwxyz")) == ["a", "b"] * 1 + list("vwxyz")  # 5 / 4 rounds to 1
    assert expanded_query(["a", "b", "c", "d"], ["x"] * 8) == ["a", "b", "c", "d", *["x"] * 8]
    assert expanded_query(["a"], []) == ["a"] and expanded_query([], ["x"]) == ["x"]


def test_rrf_sums_reciprocal_ranks():
    fused = rrf([{"a": 0.9, "b": 0.5}, {"b": 2.0}], k=60)
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61})


def test_select_cuts_where_the_evidence_falls_off():
    ranked = [src("a", 1.0), src("b", 0.9), src("c", 0.8), src("d", 0.3)]
    assert [s.paper_id for s in select(ranked, 0.6, 1, 10)] == ["a", "b", "c"]
    assert [s.paper_id for s in select(ranked, 0.6, 1, 2)] == ["a", "b"]
    assert [s.paper_id for s in select(ranked, 0.95, 2, 10)] == ["a", "b"]
    assert select([], 0.5, 1, 5) == []


def test_text_analysis():
    assert terms("Vision Transformers with convolutions") == ["vision", "transform", "convolut"]
    assert query_terms("How does DAGNN do it?") == ["dagnn"]  # question words are no topic
    assert terms("When does dough become a bagel?") == ["when", "doe", "dough", "becom", "bagel"]  # a paper keeps them
    assert markers("a [1] b [3][1]") == [1, 3, 1]
    assert strip_markers("CvT adds convolutions [2].") == "CvT adds convolutions ."
    score = support_score("CvT adds convolutions to ViT [1]", "CvT introduces convolutions into ViT")
    assert score == pytest.approx(0.75)
    assert support_score("And it is.", "anything") == 1.0
    idf = Idf.of([["a", "b"], ["a"]])
    assert idf("a") < idf("b") < idf("zzz") and "b" in idf and "zzz" not in idf


def test_search_text_drops_the_words_that_ask_for_papers():
    topic = QuestionModel.packaged().topic
    for question, kept in [("Which papers in the corpus use graph networks?", "graph networks"),
                           ("Summarize what the collection says about EEG decoding", "EEG decoding"),
                           ("I'm new to image compression, what should I read?", "image compression")]:
        searched = topic(question)
        assert kept in searched and "papers" not in searched and "collection" not in searched, question
    # Nothing but frame words, or none: unchanged.
    assert topic("Papers?") == "Papers?"
    assert topic("ConViT and CvT") == "ConViT and CvT"


def test_sentences_are_not_cut_after_abbreviations():
    text = ("Mixer has two layers (i.e. \"mixing\" features), one per patch. We beat ResNets, e.g. on "
            "ImageNet, following Smith et al. (2020). Accuracy is 81.2 vs. 79.9 for ViT. Done.")
    assert sentences(text) == [
        "Mixer has two layers (i.e. \"mixing\" features), one per patch.",
        "We beat ResNets, e.g. on ImageNet, following Smith et al. (2020).",
        "Accuracy is 81.2 vs. 79.9 for ViT.",
        "Done.",
    ]


def test_compare_quotes_what_the_question_asks_about_each_paper():
    abstracts = {
        "a": ["Alpha-Net is a network.", "We propose Alpha-Net for images.", "Alpha-Net uses Alpha-Net blocks.",
              "It injects locality through gated attention.", "Alpha-Net reaches 81 % on ImageNet."],
        "b": ["We present Beta-Former.", "Beta-Former is fast and Beta-Former is small.",
              "Locality comes from convolutional token embeddings.", "Experiments on COCO confirm it."],
    }
    every = [w for sents in abstracts.values() for s in sents for w in [terms(s)]]
    pair = [Source(paper=Paper(paper_id=pid, title=title, abstract=" ".join(abstracts[pid])), score=1.0)
            for pid, title in (("a", "Alpha-Net: local attention"), ("b", "Beta-Former: convolutional tokens"))]
    answer = Extractive(abstracts.__getitem__, Idf.of(every))(
        "How do Alpha-Net and Beta-Former differ in how they add locality?", pair, "compare")
    block_a, block_b = answer.text.split("\n\n")
    # The aspect sentences win over sentences that only repeat the papers' names, and each
    # side also says how the paper was evaluated.
    assert "gated attention" in block_a and "81 %" in block_a and "uses Alpha-Net blocks" not in block_a
    assert "convolutional token embeddings" in block_b and "COCO" in block_b
    assert [c.paper_id for c in answer.citations] == ["a", "b"]


def test_modes_and_feedback_on_the_real_index(pipeline):
    query = "neural architecture search"
    index = pipeline.index
    dense = index.search(query, SearchParams(mode="dense")).sources
    bm25 = index.search(query, SearchParams(mode="bm25")).sources
    assert all(s.bm25 is None for s in dense) and all(s.dense is None for s in bm25)
    hybrid = index.search(query, SearchParams(mode="hybrid", feedback_papers=3, feedback_terms=8))
    # Feedback re-ranks, but the first pass is kept for abstention.
    assert hybrid.first and hybrid.sources and hybrid.first != hybrid.sources
    assert sum("Architecture Search" in s.title for s in hybrid.sources[:10]) >= 3
    restricted = index.search(query, SearchParams(), restrict=[s.paper_id for s in bm25[:3]]).sources
    assert {s.paper_id for s in restricted} <= {s.paper_id for s in bm25[:3]}


def test_a_feedback_search_is_its_documented_steps(pipeline):
    """`Index.search` runs each pass's dense query beside its BM25 search and reads the
    feedback papers' vectors by chunk id; the ranking is still the steps done one at a time
    (the papers' means here read by metadata), and searches from several threads at once
    each get their own."""
    index, params = pipeline.index, SearchParams(feedback_papers=3, feedback_terms=8)
    query = "automatically designing network architectures"
    got = index.search(query, params)
    vec, q = index.embedder.embed_query(query), query_terms(query)
    dense, lexical = index.dense(vec, params.candidates), index.lexical(q, params.candidates)
    first = sorted(relative_fusion([dense, lexical]).items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(s.paper_id, s.score) for s in got.first] == [(pid, round(score, 6)) for pid, score in first]
    top = [pid for pid, _ in first[:3]]
    means = index.store.paper_vectors(top)
    moved = vec + params.feedback_weight * np.stack([means[pid] for pid in top]).mean(axis=0)
    dense = index.dense(moved / np.linalg.norm(moved), params.candidates)
    lexical = index.lexical(expanded_query(q, index.expansion_terms(top, set(q), 8)), params.candidates)
    final = sorted(relative_fusion([dense, lexical]).items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(s.paper_id, s.score, s.dense, s.bm25) for s in got.sources] == [
        (pid, round(score, 6), dense.get(pid), lexical.get(pid)) for pid, score in final]
    questions = [query, "masked image modelling", "state space models for vision", "few-shot classification"]
    alone = [index.search(text, params).sources for text in questions]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda text: index.search(text, params).sources, questions))
    assert together == alone


def test_words_the_embedder_does_not_know_are_found_by_their_papers(default_pipeline):
    """"Which papers use VGG?": the default embedder has no meaning for such names (best
    cosine about 0.25, to unrelated papers), while BM25 finds every paper that names them.
    With the default model's full-match cosine those papers reach the top 10; with plain
    min-max fusion (0) the unrelated ones crowd them out, and VGG's question was declined.
    "MSCOCO" also needs the feedback pass to keep the question's own word (`expanded_query`):
    its first pass finds the papers, and 8 expansion terms used to pull the ranking away."""
    settings = default_pipeline.settings
    if not settings.dense_full_match:
        pytest.skip(f"{settings.embed_model} fuses with plain min-max")
    plain = settings.with_overrides({"dense_full_match": 0.0})
    papers = dict(default_pipeline.index.papers.items())

    def found(word: str, s) -> tuple[int, int, bool]:
        naming = {pid for pid, p in papers.items() if re.search(rf"\b{word}\b", f"{p.title} {p.abstract}")}
        ev = default_pipeline.gather(f"Which papers use {word}?", None, s)
        return len(naming & {src.paper_id for src in ev.ranked[:10]}), len(naming), ev.abstain

    words = ("VGG", "DeiT", "GCN", "PSNR")
    default, before = [found(w, settings) for w in words], [found(w, plain) for w in words]
    assert sum(f[0] for f in default) > sum(f[0] for f in before), (default, before)
    assert sum(f[0] for f in default) >= 0.7 * sum(f[1] for f in default), default  # 19 of 24 here
    # VGG is answered. (Plain fusion declined it while "use" was searched too; "use" is now a
    # frame word, so both search "VGG" and the ranking above is what tells them apart.)
    assert not default[0][2]
    hits, naming, _ = found("MSCOCO", settings)
    assert hits >= 3 and naming == 5, hits  # 4 of 5 here


def test_a_question_word_does_not_pick_the_paper(default_pipeline):
    """"What does DAGNN do?": "does" and "do" used to be query terms, and a title holding them
    ("When does dough become a bagel? ...") outranked the one abstract that defines DAGNN."""
    answer = default_pipeline.answer("What does DAGNN do?")
    assert not answer.abstained
    assert answer.citations[0].title == "Towards Deeper Graph Neural Networks"


def test_get_all_pages_through_a_collection(pipeline):
    from rag.store import get_all

    coll = pipeline.index.store.chunks
    paged = get_all(coll, ["documents"], page=100)  # 866 chunks: nine pages
    whole = coll.get(include=["documents"])
    assert len(paged["ids"]) == coll.count() == len(set(paged["ids"]))
    assert dict(zip(paged["ids"], paged["documents"])) == dict(zip(whole["ids"], whole["documents"]))


@pytest.mark.parametrize("fixture", ["pipeline", "default_pipeline"])
def test_dense_search_of_a_small_index_is_exact(fixture, request):
    """HNSW search is approximate, and which chunk it misses depends on how the index's graph
    came out: two builds of the bundled corpus answered "Which papers use CIFAR-100?"
    differently. Up to EXACT_CHUNKS chunks the dense retriever is exact: its papers and scores
    are those of the 100 nearest chunks by brute force, whichever build."""
    index = request.getfixturevalue(fixture).index
    stored = index.store.chunks.get(include=["embeddings"])
    ids, vectors = np.array(stored["ids"]), np.array(stored["embeddings"])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    questions = ["CIFAR-100", "vision transformers with convolutions", "which papers use ResNets?",
                 "self-supervised learning", "object detection on COCO", "knowledge distillation",
                 "diffusion models", "adversarial examples", "speech enhancement", "graph neural networks"]
    for question in questions:
        query = index.embedder.embed_query(question)
        nearest = np.argsort(-(vectors @ query))[:100]
        exact: dict[str, float] = {}
        for i in nearest:
            pid = str(ids[i]).rsplit(":", 1)[0]
            exact[pid] = max(exact.get(pid, -1.0), float(vectors[i] @ query))
        found = index.dense(query, 100)
        assert found.keys() == exact.keys(), (question, found.keys() ^ exact.keys())
        assert all(abs(found[pid] - exact[pid]) < 1e-4 for pid in exact), question
