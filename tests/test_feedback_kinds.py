"""Pseudo-relevance feedback is for list questions only, and a named paper leads the ranking a
fact question is answered from: on the real bundled index (the plumbing model)."""

from __future__ import annotations

from rag import questions
from rag.evidence import named_first
from rag.models import Paper, Source


def test_a_fact_question_is_ranked_by_its_first_pass_and_a_list_question_with_feedback(pipeline):
    s = pipeline.settings
    assert s.feedback_papers > 0
    fact = questions.analyse("How many images does the dataset of generated pictures hold?", None, pipeline.names)
    listing = questions.analyse("Which papers detect pictures made by generative models?", None, pipeline.names)
    assert (fact.kind, listing.kind) == ("fact", "list")
    ranking = pipeline.search(fact, s)
    assert [src.paper_id for src in ranking.sources] == [src.paper_id for src in ranking.first]
    ranking = pipeline.search(listing, s)
    # Feedback re-queried: the dense side now scores the moved query, not the question.
    assert [src.dense for src in ranking.sources[:5]] != [src.dense for src in ranking.first[:5]]


def _src(pid: str, score: float) -> Source:
    return Source(paper=Paper(pid, f"Title {pid}", "An abstract."), score=score)


def test_named_first_moves_the_named_paper_up_and_keeps_the_rest_in_order():
    ranked = [_src("a", 1.0), _src("b", 0.8), _src("simmim", 0.5), _src("c", 0.4)]
    query = questions.Query("q", "q", "q", "fact", titled=("simmim",))
    assert [s.paper_id for s in named_first(query, ranked, lambda pid: None)] == ["simmim", "a", "b", "c"]
    missing = questions.Query("q", "q", "q", "fact", titled=("d",))
    out = named_first(missing, ranked, lambda pid: Paper(pid, "D", "x"))
    assert [s.paper_id for s in out] == ["d", "a", "b", "simmim", "c"] and out[0].score == 0.0
    plain = questions.Query("q", "q", "q", "list")
    assert named_first(plain, ranked, lambda pid: None) is ranked
