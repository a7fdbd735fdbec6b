"""The eval metrics on hand-made inputs, the ranking metrics against ranx, and `rag eval`
end to end on the real bundled index."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
import warnings

import pytest

import eval.metrics as m
from eval import cli_args, report, runner
from rag.models import Answer, Citation, Paper, Source

CVT = Paper("p-cvt", "CvT: Introducing Convolutions to Vision Transformers",
            "We present a new architecture, named Convolutional vision Transformer (CvT), that improves ViT "
            "by introducing convolutions into ViT. This is done through a convolutional token embedding.")
CONVIT = Paper("p-convit", "ConViT: Improving Vision Transformers with Soft Convolutional Inductive Biases",
               "We introduce gated positional self-attention (GPSA), which can be equipped with a soft "
               "convolutional inductive bias. ConViT outperforms DeiT on ImageNet.")
PAPERS = {p.paper_id: p for p in (CVT, CONVIT)}


def cite(n: int, paper: Paper) -> Citation:
    return Citation(n=n, paper_id=paper.paper_id, title=paper.title, quote="")


def test_worked_examples_in_docstrings_hold():
    result = doctest.testmod(m)
    assert result.attempted >= 15 and result.failed == 0


# --- retrieval ---------------------------------------------------------------------------
def test_recall_counts_relevant_papers_in_the_first_k():
    ranking = ["a", "x", "b", "y", "c"]
    assert m.recall_at_k(ranking, {"a", "b", "c", "d"}, 1) == 0.25
    assert m.recall_at_k(ranking, {"a", "b", "c", "d"}, 5) == 0.75
    assert m.recall_at_k(ranking, {"z"}, 5) == 0.0
    assert m.recall_at_k(ranking, set(), 5) is None


def test_reciprocal_rank_is_one_over_the_first_hit():
    assert m.reciprocal_rank(["a", "b"], {"a"}) == 1.0
    assert m.reciprocal_rank(["x", "y", "z", "b"], {"b", "a"}) == 0.25
    assert m.reciprocal_rank(["x"], {"a"}) == 0.0
    assert m.reciprocal_rank(["x"], []) is None


def test_ndcg_is_one_for_an_ideal_ranking_and_worked_example():
    assert m.ndcg_at_k(["a", "b", "x"], {"a", "b"}, 10) == pytest.approx(1.0)
    # one relevant paper at rank 2: (1/log2 3) / 1
    assert m.ndcg_at_k(["x", "a"], {"a"}, 10) == pytest.approx(0.63092975)
    # more relevant papers than k: the ideal DCG only counts k of them
    assert m.ndcg_at_k(["a", "b"], {"a", "b", "c"}, 2) == pytest.approx(1.0)
    assert m.ndcg_at_k(["x", "a"], {"a"}, 1) == 0.0
    assert m.ndcg_at_k(["a"], set(), 10) is None


def test_ranking_metrics_agree_with_ranx():
    warnings.filterwarnings("ignore", module="ranx")
    warnings.filterwarnings("ignore", message=".*unsafe cast.*")
    from ranx import Qrels, Run, evaluate

    cases = [
        (["a", "x", "b", "y", "c"], {"a", "b", "c", "d"}),
        (["x", "y", "z", "b"], {"b", "a"}),
        ([f"n{i}" for i in range(25)] + ["a"], {"a"}),  # relevant paper beyond rank 20
        ([f"n{i}" for i in range(12)] + ["a", "b"], {"a", "b", "c"}),
        (["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"], {"b", "d", "f", "h", "j", "l"}),
    ]
    qrels = Qrels({f"q{i:02d}": {doc: 1 for doc in rel} for i, (_, rel) in enumerate(cases)})
    run = Run({f"q{i:02d}": {doc: float(100 - r) for r, doc in enumerate(ranking[:m.RANK_DEPTH])}
               for i, (ranking, _) in enumerate(cases)})
    theirs = evaluate(qrels, run, ["recall@5", "recall@10", "recall@20", "mrr", "ndcg@10"], return_mean=False)
    for i, (ranking, rel) in enumerate(cases):
        ranking = ranking[:m.RANK_DEPTH]
        assert m.recall_at_k(ranking, rel, 5) == pytest.approx(theirs["recall@5"][i])
        assert m.recall_at_k(ranking, rel, 10) == pytest.approx(theirs["recall@10"][i])
        assert m.recall_at_k(ranking, rel, 20) == pytest.approx(theirs["recall@20"][i])
        assert m.reciprocal_rank(ranking, rel) == pytest.approx(theirs["mrr"][i])
        assert m.ndcg_at_k(ranking, rel, 10) == pytest.approx(theirs["ndcg@10"][i])


# --- citations ---------------------------------------------------------------------------
def test_citation_precision_recall_f1():
    assert m.citation_scores(["A", "B"], gold=["A", "B"]) == (1.0, 1.0, 1.0)
    p, r, f1 = m.citation_scores(["A", "X"], gold=["A", "B", "C"], acceptable=["X"])
    assert (p, r) == (1.0, pytest.approx(1 / 3)) and f1 == pytest.approx(0.5)
    assert m.citation_scores(["X"], gold=["A"]) == (0.0, 0.0, 0.0)
    assert m.citation_scores([], gold=[]) == (None, None, None)


def test_cited_titles_are_distinct_and_in_marker_order():
    a = Answer("q", "t", citations=[cite(2, CONVIT), cite(1, CVT), cite(3, CVT)])
    assert m.cited_titles(a) == [CVT.title, CONVIT.title]


def test_valid_answer_has_no_invalid_citations():
    a = Answer("q", "CvT adds convolutions [1]. ConViT uses GPSA [2].",
               citations=[cite(1, CVT), cite(2, CONVIT)], sources=[Source(CVT, 1.0), Source(CONVIT, 0.9)])
    assert m.invalid_citations(a, PAPERS) == []


def test_invalid_citations_are_each_reported():
    ghost = Paper("p-ghost", "Ghost", "Not indexed.")
    a = Answer("q", "CvT [1]. Ghost [2]. Nothing [4] [4].", citations=[cite(1, CVT), cite(2, ghost), cite(3, CONVIT)],
               sources=[Source(CVT, 1.0), Source(ghost, 1.0)])
    assert m.invalid_citations(a, PAPERS) == [
        "marker [4] has no citation",  # counted once however often it appears
        "citation [2] is not in the corpus",
        "citation [3] is not among the sources",
    ]


# --- correctness and abstention -------------------------------------------------------------
def test_fact_correct_matches_any_pattern_case_insensitively_ignoring_markers():
    assert m.fact_correct("It reaches 81.59 % F1 [1].", [r"81\.59\s*%?"])
    assert m.fact_correct("Uses GATED positional self-attention.", [r"nothing", r"gated positional"])
    assert not m.fact_correct("Reported in [12].", [r"\b12\b"])
    assert not m.fact_correct("", [r"x"])


def test_compare_needs_both_papers_cited_and_both_terms():
    text = "ConViT adds GPSA [1]. CvT uses a convolutional token embedding [2]."
    gold, terms = [CONVIT.title, CVT.title], ["GPSA", "convolutional (token embedding|projection)"]
    assert m.compare_correct(text, [CONVIT.title, CVT.title], gold, terms)
    assert not m.compare_correct(text, [CONVIT.title], gold, terms)
    assert not m.compare_correct("ConViT adds GPSA [1]. CvT differs [2].", [CONVIT.title, CVT.title], gold, terms)


def test_declined_means_abstained_without_citations():
    assert m.declined(Answer("q", "The corpus does not cover this.", abstained=True))
    assert not m.declined(Answer("q", "CvT [1].", citations=[cite(1, CVT)]))
    assert not m.declined(Answer("q", "odd", abstained=True, citations=[cite(1, CVT)]))


# --- support -----------------------------------------------------------------------------
def test_claims_keep_markers_with_their_sentence_and_split_lines():
    text = ("Papers that match (2):\n\n1. **CvT** [1]: CvT adds convolutions.\n"
            "2. **ConViT** [2]: GPSA. It is soft.\n\nCvT is fast. [1] ConViT too. [2][1]")
    found = m.claims(text)
    assert [ns for _, ns in found] == [[1], [2], [1], [2, 1]]
    assert found[2][0] == "CvT is fast. [1]"


def test_support_share_uses_the_cited_abstracts_and_threshold():
    a = Answer("q", "CvT introduces convolutions into ViT [1]. GPSA gives a soft convolutional bias [2]. "
                    "CvT uses gated positional self-attention [1]. Unknown marker text here [3].",
               citations=[cite(1, CVT), cite(2, CONVIT)])
    # sentences 1 and 2 are backed by their own abstract; 3 names ConViT's idea but cites CvT;
    # 4 cites nothing that exists
    assert m.support_share(a, PAPERS, threshold=0.5) == 0.5
    assert m.support_share(a, PAPERS, threshold=0.0) == 0.75  # a missing citation never supports
    assert m.support_share(Answer("q", "No markers at all."), PAPERS, 0.5) is None


def test_a_sentence_citing_two_papers_needs_support_from_each():
    a = Answer("q", "CvT introduces a convolutional token embedding and ConViT introduces GPSA [1][2].",
               citations=[cite(1, CVT), cite(2, CONVIT)])
    # 5 of its 7 content stems are in CvT's abstract, 4 of 7 in ConViT's
    assert m.support_share(a, PAPERS, threshold=0.5) == 1.0
    assert m.support_share(a, PAPERS, threshold=0.7) == 0.0


# --- one question and aggregation -----------------------------------------------------------
def test_score_fact_question():
    item = {"type": "fact", "gold": [CVT.title], "acceptable": [],
            "answer_patterns": [r"convolutional token embedding"]}
    a = Answer("q", "This is done through a convolutional token embedding [1].", citations=[cite(1, CVT)],
               sources=[Source(CVT, 1.0)])
    s = m.score(item, a, [CONVIT.title, CVT.title, CVT.title], PAPERS, 0.5)
    assert s["recall@5"] == 1.0 and s["mrr"] == 0.5
    assert (s["cite_precision"], s["cite_recall"], s["cite_f1"]) == (1.0, 1.0, 1.0)
    assert s["correct"] == 1.0 and s["false_abstention"] == 0.0 and s["abstention"] is None
    assert s["support"] == 1.0 and s["invalid_citations"] == 0 and s["unsupported_removed"] == 0


def test_score_counts_the_removed_unsupported_sentences():
    item = {"type": "fact", "gold": [CVT.title], "acceptable": [], "answer_patterns": [r"convolution"]}
    a = Answer("q", "CvT adds convolutions [1].", citations=[cite(1, CVT)], sources=[Source(CVT, 1.0)],
               answerer="llm", unsupported=["Bananas are yellow fruit grown in tropical farms."])
    assert m.score(item, a, [CVT.title], PAPERS, 0.5)["unsupported_removed"] == 1


def test_score_unanswerable_question():
    item = {"type": "unanswerable", "gold": [], "acceptable": []}
    declined = m.score(item, Answer("q", "The corpus does not cover this.", abstained=True), [CVT.title], PAPERS, 0.5)
    assert declined["abstention"] == 1.0 and declined["recall@10"] is None and declined["cite_precision"] is None
    answered = m.score(item, Answer("q", "CvT [1].", citations=[cite(1, CVT)], sources=[Source(CVT, 1.0)]),
                       [CVT.title], PAPERS, 0.5)
    assert answered["abstention"] == 0.0 and answered["cite_precision"] == 0.0 and answered["correct"] is None


def record(type_: str, latency: float, **scores) -> dict:
    base = {metric: None for metric in m.AGGREGATION} | {"invalid_citations": 0}
    return {"type": type_, "latency_s": latency, "scores": base | scores}


def test_summarize_per_type_and_overall():
    records = [record("fact", 0.1, correct=1.0, false_abstention=0.0, invalid_citations=1),
               record("fact", 0.2, correct=0.0, false_abstention=1.0),
               record("unanswerable", 0.4, abstention=1.0)]
    out = m.summarize(records)
    assert list(out) == ["fact", "unanswerable", "overall"]
    assert out["fact"]["correct"] == 0.5 and out["fact"]["abstention"] is None
    assert out["overall"]["abstention"] == 1.0 and out["overall"]["false_abstention"] == 0.5
    assert out["overall"]["invalid_citations"] == 1 and out["overall"]["n"] == 3
    assert out["overall"]["latency_p50"] == pytest.approx(0.2)
    assert out["fact"]["latency_p95"] == pytest.approx(0.195)


def test_percentile_agrees_with_numpy():
    import numpy as np

    values = [0.3, 0.05, 1.7, 0.2, 0.9, 0.4, 0.11]
    for q in (0, 50, 90, 95, 100):
        assert m.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert m.percentile([], 50) is None


# --- the command ---------------------------------------------------------------------------
def test_cli_types_match_the_metrics_types():
    assert cli_args.TYPES == m.TYPES


def test_rag_help_does_not_import_the_eval_machinery():
    code = ("import sys, rag.cli; rag.cli.build_parser(); "
            "print(sorted(n for n in ('eval.metrics', 'eval.runner', 'torch', 'chromadb', 'ranx', 'matplotlib') "
            "if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_compare_configurations_add_llm_only_when_configured():
    from rag.settings import Settings

    plain = runner.configurations(Settings(), compare=True)
    assert list(plain) == ["hybrid", "bm25", "dense"]
    assert plain["bm25"].retrieval_mode == "bm25" and plain["dense"].answerer == "extractive"
    with_llm = runner.configurations(Settings(llm_base_url="http://127.0.0.1:9/v1"), compare=True)
    assert list(with_llm) == ["hybrid", "bm25", "dense", "llm"] and with_llm["llm"].answerer == "llm"
    assert list(runner.configurations(Settings(), compare=False)) == ["default"]


def test_malformed_question_file_names_the_line(tmp_path):
    from rag.errors import ConfigError

    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "type": "fact", "question": "x"}\n{not json\n')
    with pytest.raises(ConfigError, match=r"q\.jsonl:2"):
        runner.load_questions(path)
    path.write_text('{"id": "a", "type": "trivia", "question": "x"}\n')
    with pytest.raises(ConfigError, match=r"q\.jsonl:1"):
        runner.load_questions(path)


def test_markdown_report_puts_configs_side_by_side():
    summaries = {"hybrid": m.summarize([record("fact", 0.1, correct=1.0)]),
                 "bm25": m.summarize([record("fact", 0.3, correct=0.0)])}
    meta = {"n_questions": 1, "questions": "q.jsonl", "created": "now",
            "configs": {"hybrid": {"retrieval_mode": "hybrid", "answerer": "extractive"},
                        "bm25": {"retrieval_mode": "bm25", "answerer": "extractive"}}}
    results = {"hybrid": [{"id": "f1", **record("fact", 0.1, correct=1.0)}],
               "bm25": [{"id": "f1", **record("fact", 0.3, correct=0.0)}]}
    text = report.markdown(meta, summaries, results)
    assert "| metric | hybrid | bm25 |" in text
    assert "| correct (fact, compare) | 1.000 | 0.000 |" in text
    assert "| latency p50 (ms) | 100 | 300 |" in text
    assert "- `bm25`: f1 (wrong)" in text and "- `hybrid`: none" in text
    assert "recall@10" not in text  # metrics that apply to no question are left out


def test_llm_answers_that_fell_back_are_reported():
    llm = {"retrieval_mode": "hybrid", "answerer": "llm"}
    records = [{"abstained": False, "answerer": "llm", "notes": []},
               {"abstained": False, "answerer": "extractive", "notes": ["LLM endpoint unreachable"]},
               {"abstained": True, "answerer": "extractive", "notes": []}]
    assert report.fallbacks(llm, records) == (
        "1 of 3 answers fell back to extractive (first note: LLM endpoint unreachable)")
    assert report.fallbacks(llm, records[:1]) == ""
    assert report.fallbacks({"answerer": "extractive"}, records) == ""


def test_rag_eval_limit_writes_the_three_outputs(bundled_settings, monkeypatch, tmp_path, capsys):
    from rag.cli import main

    monkeypatch.setenv("RAG_DATA_DIR", str(bundled_settings.data_dir))
    out = tmp_path / "out"
    assert main(["eval", "--limit", "3", "--out", str(out)]) == 0
    assert (out / "report.md").is_file() and (out / "metrics.png").stat().st_size > 0
    data = json.loads((out / "results.json").read_text())
    records = data["questions"]["default"]
    assert len(records) == 3 and data["summary"]["default"]["overall"]["n"] == 3
    assert all(r["text"] and r["ranking"] and "recall@10" in r["scores"] for r in records)
    # the one serialisation of an Answer (Answer.to_dict), the same as `rag ask --json`
    assert all({"citations", "sources", "notes", "unsupported", "removed_markers"} <= r.keys() for r in records)
    assert "overall" in capsys.readouterr().out  # the summary table


def test_rag_eval_compare_covers_every_question_type(bundled_settings, monkeypatch, tmp_path):
    from rag.cli import main

    items, seen = [], set()
    for item in runner.load_questions(cli_args.DEFAULT_QUESTIONS):
        if item["type"] not in seen:
            seen.add(item["type"])
            items.append(item)
    questions = tmp_path / "one-per-type.jsonl"
    questions.write_text("".join(json.dumps(item) + "\n" for item in items))
    monkeypatch.setenv("RAG_DATA_DIR", str(bundled_settings.data_dir))
    out = tmp_path / "out"
    assert main(["eval", "--compare", "--questions", str(questions), "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    assert list(data["questions"]) == ["hybrid", "bm25", "dense"]
    assert set(data["summary"]["bm25"]) == set(m.TYPES) | {"overall"}
    followup = next(r for r in data["questions"]["hybrid"] if r["type"] == "followup")
    assert followup["first"]["question"] and followup["first"]["text"]
    report_md = (out / "report.md").read_text()
    assert "| metric | hybrid | bm25 | dense |" in report_md
