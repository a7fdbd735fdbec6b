"""The public answer()/retrieve() contract on the real index of the bundled corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rag
from rag.citations import unmarked
from rag.models import Answer, Citation, Source
from rag.render import to_markdown
from rag.text import escape_md, markers, sentences

QUESTION_FILE = Path(__file__).parent.parent / "eval" / "questions.jsonl"
QUESTIONS = [json.loads(line) for line in QUESTION_FILE.read_text().splitlines() if line.strip()]
CNN_VIT = next(q for q in QUESTIONS if q["question"] == "Which papers bridge CNNs and ViTs?")


def check_contract(a: Answer, corpus_titles: dict[str, str]) -> None:
    """Every marker has a citation, every citation a retrieved source and a real quote."""
    assert isinstance(a, Answer) and isinstance(a.text, str) and a.text
    source_ids = {s.paper_id for s in a.sources}
    numbers = {c.n for c in a.citations}
    assert set(markers(a.text)) == numbers
    for c in a.citations:
        assert isinstance(c, Citation)
        assert c.paper_id in source_ids, "cited a paper the answerer did not see"
        assert corpus_titles[c.paper_id] == c.title
        # A quote is one or more sentences of the abstract (non-adjacent ones are joined).
        assert c.quote and all(part in unmarked(rag_abstract(c.paper_id)) for part in sentences(c.quote))
    if a.abstained:
        assert a.citations == []


_ABSTRACTS: dict[str, str] = {}


def rag_abstract(paper_id: str) -> str:
    return _ABSTRACTS[paper_id]


@pytest.fixture(scope="module")
def titles(pipeline) -> dict[str, str]:
    _ABSTRACTS.update({pid: p.abstract for pid, p in pipeline.index.papers.items()})
    return {pid: p.title for pid, p in pipeline.index.papers.items()}


def test_module_level_api_opens_once_and_answers(bundled_settings, titles):
    a = rag.answer("Which papers bridge CNNs and ViTs?", history=None, settings=bundled_settings)
    check_contract(a, titles)
    assert not a.abstained and len(a.citations) >= 3
    assert all(isinstance(s, Source) and s.score is not None for s in a.sources)
    # A second call (with a per-call option) reuses the same opened assistant.
    first = rag.default_assistant(bundled_settings)
    rag.answer("What is CvT?", settings=bundled_settings, max_papers=3)
    assert rag.default_assistant(bundled_settings.with_overrides({"max_papers": 3})) is first


def test_example_question_cites_cnn_vit_hybrids(pipeline, titles):
    a = pipeline.answer(CNN_VIT["question"])
    check_contract(a, titles)
    cited = [c.title for c in a.citations]
    gold, acceptable = set(CNN_VIT["gold"]), set(CNN_VIT["acceptable"])
    hybrids = [t for t in cited if t.split(":")[0] in {"ConViT", "CvT", "LeViT", "ViT-CoMer"}]
    assert len(hybrids) >= 2, cited
    assert len(gold & set(cited)) >= 4, cited
    # Known gap (docs/quality.md, "Known limits"): a ViT-only paper can slip in; most must fit.
    precision = sum(t in gold | acceptable for t in cited) / len(cited)
    assert precision >= 0.75, [t for t in cited if t not in gold | acceptable]
    assert a.text.count("\n1. ") == 1 and "**" in a.text  # one line per paper


def test_retrieve_ranks_one_entry_per_paper(pipeline):
    papers = pipeline.retrieve("vision transformers with convolutions", k=10)
    assert len(papers) == 10
    assert len({p.paper_id for p in papers}) == 10
    assert [p.score for p in papers] == sorted((p.score for p in papers), reverse=True)
    assert any("Convolution" in p.title for p in papers[:5])


def test_out_of_corpus_question_abstains(pipeline, titles):
    a = pipeline.answer("What is the best recipe for a chocolate cake with buttercream frosting?")
    check_contract(a, titles)
    assert a.abstained and a.citations == []
    assert "does not cover" in a.text and "nearest, not answering" in a.text
    assert a.sources and all(escape_md(s.title) in a.text for s in a.sources)  # shown inert


def test_abstention_judges_the_topic_not_the_asking_scaffolding(pipeline):
    # "papers", "studies" are in the corpus's vocabulary; counted as question words they
    # lowered the share of the question an abstract covers, and paraphrased list questions
    # were declined more often than the same topic asked bare.
    topic = "learn from measurements of people's brain activity?"
    bare = pipeline.abstain_features(topic)
    for asked in (f"Which papers {topic}", f"Is there anything in the collection that can {topic}"):
        feats = pipeline.abstain_features(asked)
        # The words' coverage is the topic's; the sentence embedding moves a little with the wording.
        assert {k: v for k, v in feats.items() if k != "dense"} == {k: v for k, v in bare.items() if k != "dense"}
        assert abs(feats["dense"] - bare["dense"]) < 0.02, asked
    assert bare["cover_max"] > 0.3  # the brain-activity papers cover the topic's words


def test_value_question_puts_the_stating_sentence_first(pipeline, titles):
    a = pipeline.answer("What mean F1 score for valence does HiSTN reach in subject-dependent tests?")
    check_contract(a, titles)
    assert not a.abstained
    first_sentence = a.text.split(" [1]")[0]
    assert re.search(r"96\.82", first_sentence), a.text


def test_compare_cites_both_named_papers_side_by_side(pipeline, titles):
    a = pipeline.answer("How do ConViT and CvT differ?")
    check_contract(a, titles)
    assert [c.title.split(":")[0] for c in a.citations] == ["ConViT", "CvT"]
    assert a.text.index("**ConViT** [1]") < a.text.index("**CvT** [2]")


def first_turn(pipeline) -> tuple[Answer, list[dict]]:
    """The example question's answer and the history a chat would hold after it."""
    first = pipeline.answer(CNN_VIT["question"])
    return first, [{"role": "user", "content": CNN_VIT["question"]},
                   {"role": "assistant", "content": to_markdown(first)}]


def test_follow_up_is_answered_against_the_previous_turn(pipeline, titles):
    first, history = first_turn(pipeline)
    follow = pipeline.answer("Which of those are designed for faster inference?", history=history)
    check_contract(follow, titles)
    assert not follow.abstained
    assert {c.paper_id for c in follow.citations} <= {c.paper_id for c in first.citations}
    # The same words as a fresh question search the whole corpus instead.
    fresh = pipeline.answer("Which of those are designed for faster inference?", history=history, follow_up=False)
    assert {s.paper_id for s in fresh.sources} - {c.paper_id for c in first.citations}


@pytest.mark.parametrize("stored", ["text", "message", "ids"])
def test_follow_up_history_as_an_api_user_stores_it(pipeline, titles, stored):
    """Plain `a.text`, `a.as_message()` (citations as data) and bare paper ids all restrict
    "which of those" to the previous answer's papers, exactly as the rendered Markdown does."""
    first, markdown_history = first_turn(pipeline)
    turn = {"text": {"role": "assistant", "content": first.text},
            "message": first.as_message(),
            "ids": {"role": "assistant", "content": "", "citations": [c.paper_id for c in first.citations]}}[stored]
    history = [{"role": "user", "content": CNN_VIT["question"]}, turn]
    question = "Which of those are designed for faster inference?"
    follow = pipeline.answer(question, history=history)
    check_contract(follow, titles)
    expected = pipeline.answer(question, history=markdown_history)
    assert [c.paper_id for c in follow.citations] == [c.paper_id for c in expected.citations]
    assert {c.paper_id for c in follow.citations} <= {c.paper_id for c in first.citations}


def test_ordinal_follow_up_targets_that_paper(pipeline, titles):
    first, history = first_turn(pipeline)
    follow = pipeline.answer("What dataset does the second one evaluate on?", history=history)
    check_contract(follow, titles)
    assert [c.paper_id for c in follow.citations] == [first.citations[1].paper_id]


def test_a_question_about_them_answers_from_every_earlier_paper(pipeline, titles):
    """"What did they find?" was answered from the one earlier paper that best matched "find"."""
    first, history = first_turn(pipeline)
    each = pipeline.answer("What did they find?", history=history)
    check_contract(each, titles)
    assert {c.paper_id for c in each.citations} == {c.paper_id for c in first.citations}


def test_tell_me_more_quotes_sentences_not_shown_yet(pipeline, titles):
    """"tell me more" stays with the previous answer's paper and quotes its other sentences;
    before, it was searched as a new question and answered from "Show, Attend and Tell"."""
    first = pipeline.answer("What does CvT propose?")
    history = [{"role": "user", "content": "What does CvT propose?"}, first.as_message()]
    more = pipeline.answer("tell me more", history=history)
    check_contract(more, titles)
    assert [c.paper_id for c in more.citations] == [first.citations[0].paper_id]
    assert not set(sentences(more.citations[0].quote)) & set(sentences(first.citations[0].quote))


def test_a_requested_number_of_papers_caps_the_list(pipeline, titles):
    question = CNN_VIT["question"]
    full = pipeline.answer(question)
    three = pipeline.answer(question.replace("Which papers", "Give me 3 papers that"))
    check_contract(three, titles)
    assert len(full.citations) > 3 and len(three.citations) == 3
    # The same topic: the three are among the full list's papers (their order may move with the wording).
    assert {c.paper_id for c in three.citations} <= {c.paper_id for c in full.citations}


def test_which_paper_with_a_named_paper_answers_with_that_paper(pipeline, titles):
    """"Which paper introduced LoFTR?" was a list led by papers that merely say "introduce"."""
    answer = pipeline.answer("Which paper introduced LoFTR?")
    check_contract(answer, titles)
    assert [c.title for c in answer.citations] == ["LoFTR: Detector-Free Local Feature Matching with Transformers"]


def test_three_named_papers_are_compared_side_by_side(pipeline, titles):
    """Only the first two of three named papers were compared before."""
    answer = pipeline.answer("Compare CvT, ConViT and CrossViT")
    check_contract(answer, titles)
    assert [c.title.split(":")[0] for c in answer.citations] == ["CvT", "ConViT", "CrossViT"]
    assert all(f"[{n}]" in answer.text for n in (1, 2, 3))


@pytest.mark.parametrize("message", ["thanks!", "Thank you so much", "hi", "ok, thanks"])
def test_small_talk_gets_no_search_and_no_citations(pipeline, message):
    answer = pipeline.answer(message)
    assert answer.abstained and not answer.citations and not answer.sources
    assert "Ask me about the papers" in answer.text


def test_stream_yields_text_then_the_answer(pipeline):
    events = list(pipeline.stream("What is CvT?"))
    assert isinstance(events[-1], Answer)
    assert all(isinstance(e, str) for e in events[:-1]) and events[:-1]
    assert "".join(events[:-1]) == events[-1].text


def test_bad_questions_raise_a_value_error(pipeline):
    for bad in ["", "   ", "?!?", "x" * 100_000]:
        with pytest.raises(ValueError):
            pipeline.answer(bad)
