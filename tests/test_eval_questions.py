"""The eval question sets (eval/questions.jsonl, eval/generalization.jsonl) are well formed and
consistent with the corpus.

Schema: eval/README_questions.md. These checks do not look at the assistant's answers. The
consistency checks run on both sets; the size and coverage checks are the main set's own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache

import pytest

from eval.cli_args import DEFAULT_QUESTIONS, TYPES
from rag.corpus import load_papers
from rag.settings import BUNDLED_CORPUS

MINIMUMS = {"topical": 24, "fact": 18, "compare": 10, "unanswerable": 10, "followup": 6}
GENERALIZATION = DEFAULT_QUESTIONS.with_name("generalization.jsonl")
# The generalisation set's second part (eval/README_questions.md): compare and near-miss questions.
GENERALIZATION_MINIMUMS = {"topical": 24, "compare": 10, "unanswerable": 10}


def read_set(path) -> list[dict]:
    if not path.exists():
        pytest.skip(f"{path} does not exist yet")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def main_set() -> list[dict]:
    return read_set(DEFAULT_QUESTIONS)


@pytest.fixture(scope="module")
def generalization() -> list[dict]:
    return read_set(GENERALIZATION)


@pytest.fixture(scope="module", params=[DEFAULT_QUESTIONS, GENERALIZATION], ids=lambda p: p.name)
def questions(request) -> list[dict]:
    """Each question set in turn, for the checks that hold for every set."""
    return read_set(request.param)


@lru_cache(maxsize=1)
def abstracts_by_title() -> dict[str, list[str]]:
    """Corpus title -> its abstracts (a title can have two versions)."""
    papers, _ = load_papers([BUNDLED_CORPUS])
    out: dict[str, list[str]] = {}
    for p in papers:
        out.setdefault(p.title, []).append(p.abstract)
    return out


def of_type(questions, type_):
    return [q for q in questions if q["type"] == type_]


def test_size_and_per_type_minimums(main_set):
    questions = main_set
    counts = Counter(q["type"] for q in questions)
    assert len(questions) >= 70
    assert set(counts) <= set(TYPES), f"unknown types: {set(counts) - set(TYPES)}"
    short = {t: counts[t] for t, n in MINIMUMS.items() if counts[t] < n}
    assert not short, f"too few questions of type {short} (minimums {MINIMUMS})"


def test_ids_unique_and_every_question_has_text(questions):
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert all(isinstance(q["question"], str) and q["question"].strip() for q in questions)


def test_topical_has_broad_and_narrow_questions_and_the_cnn_vit_one(main_set):
    topical = of_type(main_set, "topical")
    assert any(len(q["gold"]) >= 8 for q in topical), "no broad topical question (8+ gold papers)"
    assert any(2 <= len(q["gold"]) <= 3 for q in topical), "no narrow topical question (2-3 gold papers)"
    assert "Which papers bridge CNNs and ViTs?" in {q["question"] for q in topical}


def test_gold_shapes_per_type(questions):
    for q in questions:
        where = q["id"]
        if q["type"] == "unanswerable":
            assert q["gold"] == [] and q["acceptable"] == [], where
            assert isinstance(q["near_miss"], bool), where
        else:
            assert q["gold"], f"{where}: an answerable question needs gold papers"
        if q["type"] == "fact":
            assert len(q["gold"]) == 1 and q["answer_patterns"] and isinstance(q["names_paper"], bool), where
        if q["type"] == "compare":
            assert len(q["gold"]) == 2 and len(q["terms"]) == 2, where
        if q["type"] == "followup":
            assert q["first"].strip() and q["first_gold"], where
            assert set(q["gold"]) <= set(q["first_gold"]), f"{where}: follow-up gold outside the first answer's"


def test_every_title_exists_verbatim_in_the_corpus(questions):
    corpus = abstracts_by_title()
    missing = [(q["id"], t) for q in questions
               for key in ("gold", "acceptable", "first_gold") for t in q.get(key, []) if t not in corpus]
    assert not missing, f"titles not in the corpus: {missing}"


def test_gold_and_acceptable_are_disjoint_and_without_duplicates(questions):
    for q in questions:
        gold, acceptable = q.get("gold", []), q.get("acceptable", [])
        assert not set(gold) & set(acceptable), f"{q['id']}: in both gold and acceptable: {set(gold) & set(acceptable)}"
        assert len(gold) == len(set(gold)) and len(acceptable) == len(set(acceptable)), q["id"]


def test_every_regex_compiles(questions):
    bad = []
    for q in questions:
        patterns = q.get("answer_patterns", []) + q.get("terms", [])
        patterns += [part.strip() for scan in q.get("scan", []) for part in scan.split("&&")]
        for p in patterns:
            try:
                re.compile(p, re.IGNORECASE)
            except re.error as err:
                bad.append((q["id"], p, str(err)))
    assert not bad, bad


def test_fact_patterns_match_their_reference_answer(questions):
    unmatched = [(q["id"], q["answer"]) for q in of_type(questions, "fact")
                 if not any(re.search(p, q["answer"], re.IGNORECASE) for p in q["answer_patterns"])]
    assert not unmatched, f"no answer pattern matches the reference answer: {unmatched}"


def test_compare_terms_match_their_own_papers_abstract(questions):
    corpus = abstracts_by_title()
    unmatched = []
    for q in of_type(questions, "compare"):
        for title, term in zip(q["gold"], q["terms"]):
            if not any(re.search(term, abstract, re.IGNORECASE) for abstract in corpus.get(title, [])):
                unmatched.append((q["id"], title, term))
    assert not unmatched, f"compare terms not found in their paper's abstract: {unmatched}"


def test_compare_terms_do_not_match_the_other_papers_abstract(questions):
    # A term both abstracts contain would not show that an answer covered both papers.
    corpus = abstracts_by_title()
    shared = []
    for q in of_type(questions, "compare"):
        for term, other in zip(q["terms"], reversed(q["gold"])):
            if any(re.search(term, abstract, re.IGNORECASE) for abstract in corpus.get(other, [])):
                shared.append((q["id"], term, other))
    assert not shared, f"compare terms also found in the other paper's abstract: {shared}"


def test_generalization_set_has_its_compare_and_near_miss_questions(generalization):
    counts = Counter(q["type"] for q in generalization)
    short = {t: counts[t] for t, n in GENERALIZATION_MINIMUMS.items() if counts[t] < n}
    assert not short, f"too few questions of type {short} (minimums {GENERALIZATION_MINIMUMS})"
    unanswerable = of_type(generalization, "unanswerable")
    assert all(q["near_miss"] is True and q["scan"] for q in unanswerable), "each needs near_miss and its scan"


def test_the_two_sets_share_no_id_and_no_question(main_set, generalization):
    # Results of both sets can be read side by side: an id or a question in both would blur them.
    assert not {q["id"] for q in main_set} & {q["id"] for q in generalization}
    assert not {q["question"] for q in main_set} & {q["question"] for q in generalization}
