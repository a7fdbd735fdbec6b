"""Scores for one eval question, and their aggregation per question type.

Pure functions over plain values and the typed results (`Answer`, `Paper`); running the
assistant is eval/runner.py's job and rendering eval/report.py's. Every function has a worked
example that runs as a doctest: `pytest --doctest-modules eval/metrics.py`.

What is scored (None where a metric does not apply to a question; aggregates skip Nones):
- retrieval, at paper level on titles: recall@5/10/20, MRR and nDCG@10 of the ranking the
  system searched with, against `gold` (compare: both papers; unanswerable: not scored);
- citations: precision (cited papers in gold or acceptable), recall (gold papers cited), F1,
  and invalid citations (markers or citations that point nowhere: goal 0);
- correctness: fact, a reference pattern matches the answer; compare, both papers cited and
  both key terms present;
- abstention: unanswerable questions declined; false abstention on answerable ones;
- yes/no: a question with an `expect` ("yes"/"no") answered that way (`says`);
- support: share of the answer's cited sentences that their cited abstracts support;
- unsupported_removed: sentences the LLM wrote that no source supported, removed from the
  answer before it was shown (`rag.citations.validate`; always 0 for the extractive answerer);
- latency: p50/p95 of the answer wall time.

The ranking metrics are a dozen lines each here rather than ranx calls: importing ranx and
compiling its numba kernels costs ~10 s warm and ~1 min cold, more than a whole eval run.
tests/test_eval_metrics.py checks these functions against ranx on the same inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from rag.citations import claims as split_claims
from rag.models import Answer, Paper
from rag.text import markers, support_score

TYPES = ("topical", "fact", "compare", "unanswerable", "followup")
RANK_DEPTH = 20  # papers of the ranking that are scored (recall@20 is the deepest metric)

# metric -> how a type's per-question values combine. "mean" skips None; "sum" counts.
AGGREGATION = {
    "recall@5": "mean", "recall@10": "mean", "recall@20": "mean", "mrr": "mean", "ndcg@10": "mean",
    "cite_precision": "mean", "cite_recall": "mean", "cite_f1": "mean", "invalid_citations": "sum",
    "correct": "mean", "abstention": "mean", "false_abstention": "mean", "support": "mean", "yes_no": "mean",
    "unsupported_removed": "sum",
}


# --- retrieval ---------------------------------------------------------------------------
def dedupe(titles: Iterable[str]) -> list[str]:
    """Titles in order, each once (a paper indexed in two versions is one paper here).

    >>> dedupe(["CvT", "ViT", "CvT", "LeViT"])
    ['CvT', 'ViT', 'LeViT']
    """
    return list(dict.fromkeys(titles))


def recall_at_k(ranking: list[str], relevant: Iterable[str], k: int) -> float | None:
    """Share of the relevant papers among the first `k` of `ranking`; None without any.

    >>> recall_at_k(["a", "x", "b", "y"], {"a", "b", "c", "d"}, k=2)
    0.25
    """
    relevant = set(relevant)
    if not relevant:
        return None
    return len(relevant & set(ranking[:k])) / len(relevant)


def reciprocal_rank(ranking: list[str], relevant: Iterable[str]) -> float | None:
    """1 / rank of the first relevant paper (0 when none is ranked); None without any.

    >>> reciprocal_rank(["x", "y", "b", "a"], {"a", "b"})
    0.3333333333333333
    """
    relevant = set(relevant)
    if not relevant:
        return None
    return next((1 / rank for rank, title in enumerate(ranking, start=1) if title in relevant), 0.0)


def ndcg_at_k(ranking: list[str], relevant: Iterable[str], k: int) -> float | None:
    """Binary-relevance nDCG@k: DCG = sum of 1/log2(rank+1) over relevant papers in the first
    `k`, divided by the DCG of a ranking with every relevant paper on top. None without any.

    Relevant at ranks 1 and 3 of 2 relevant: (1/1 + 1/2) / (1/1 + 1/log2(3)) = 0.9197:

    >>> round(ndcg_at_k(["a", "x", "b"], {"a", "b"}, k=10), 4)
    0.9197
    """
    relevant = set(relevant)
    if not relevant:
        return None
    dcg = sum(1 / math.log2(rank + 1) for rank, title in enumerate(ranking[:k], start=1) if title in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


# --- citations ---------------------------------------------------------------------------
def cited_titles(answer: Answer) -> list[str]:
    """Distinct titles the answer cites, in marker order."""
    return dedupe(c.title for c in sorted(answer.citations, key=lambda c: c.n))


def citation_scores(cited: Iterable[str], gold: Iterable[str], acceptable: Iterable[str] = ()
                    ) -> tuple[float | None, float | None, float | None]:
    """(precision, recall, F1) of the cited titles.

    precision = cited in gold or acceptable / cited (None when nothing is cited; with no gold
    and no acceptable titles, as for an unanswerable question, every citation is wrong);
    recall = gold cited / gold (None without gold); F1 = their harmonic mean, 0 when an
    answerable question cites nothing.

    >>> citation_scores(["A", "B", "C", "D"], gold=["A", "E"], acceptable=["B", "C"])
    (0.75, 0.5, 0.6)
    >>> citation_scores([], gold=["A"])
    (None, 0.0, 0.0)
    >>> citation_scores(["X"], gold=[])
    (0.0, None, None)
    """
    cited, gold = set(cited), set(gold)
    precision = len(cited & (gold | set(acceptable))) / len(cited) if cited else None
    recall = len(cited & gold) / len(gold) if gold else None
    if recall is None:
        return precision, None, None
    p = precision or 0.0
    f1 = 2 * p * recall / (p + recall) if p + recall else 0.0
    return precision, recall, round(f1, 12)


def invalid_citations(answer: Answer, corpus_ids: Iterable[str]) -> list[str]:
    """Why each invalid marker or citation is invalid (goal: an empty list).

    Invalid: a marker `[n]` in the text with no citation n; a citation whose paper is not
    among the answer's sources (the papers the answerer was given), or not in the corpus.

    >>> from rag.models import Citation, Source
    >>> p = Paper("p1", "CvT", "CvT adds convolutions.")
    >>> a = Answer("q", "CvT adds convolutions [1] [3].", sources=[Source(p, 1.0)],
    ...            citations=[Citation(1, "p1", "CvT", ""), Citation(2, "p9", "Ghost", "")])
    >>> invalid_citations(a, corpus_ids={"p1"})
    ['marker [3] has no citation', 'citation [2] is not among the sources', 'citation [2] is not in the corpus']
    """
    corpus_ids = set(corpus_ids)
    numbers = {c.n for c in answer.citations}
    source_ids = {s.paper_id for s in answer.sources}
    problems = [f"marker [{n}] has no citation" for n in dict.fromkeys(markers(answer.text)) if n not in numbers]
    for c in sorted(answer.citations, key=lambda c: c.n):
        if c.paper_id not in source_ids:
            problems.append(f"citation [{c.n}] is not among the sources")
        if c.paper_id not in corpus_ids:
            problems.append(f"citation [{c.n}] is not in the corpus")
    return problems


# --- correctness and abstention -------------------------------------------------------------
def matches(pattern: str, text: str) -> bool:
    """Case-insensitive regex search, with citation markers removed from the text first (so
    a marker "[1]" never passes for a value "1").

    >>> matches(r"81\\.59\\s*%", "It reaches 81.59 % [1].")
    True
    >>> matches(r"\\b1\\b", "See [1].")
    False
    """
    return re.search(pattern, re.sub(r"\[\d+\]", " ", text), re.IGNORECASE) is not None


def fact_correct(text: str, patterns: Iterable[str]) -> bool:
    """Any of the reference patterns occurs in the answer text.

    >>> fact_correct("Top-1 accuracy of 87.7% [1].", [r"87\\.7\\s*%", r"eighty-seven"])
    True
    """
    return any(matches(p, text) for p in patterns)


def compare_correct(text: str, cited: Iterable[str], gold: list[str], terms: list[str]) -> bool:
    """Both papers are cited and each paper's key-term regex occurs in the text.

    >>> compare_correct("ConViT uses GPSA [1]; CvT a convolutional projection [2].",
    ...                 ["ConViT", "CvT"], ["ConViT", "CvT"], ["GPSA", "convolutional projection"])
    True
    """
    return set(gold) <= set(cited) and all(matches(t, text) for t in terms)


def says(expect: str, answer: Answer) -> bool:
    """A yes/no question ("Is there any paper that ...?") answered the expected way: "yes" is an
    answer that opens with "Yes" and cites papers, "no" one that opens with "No" and declines.

    >>> says("yes", Answer("q", "Yes: 2 paper(s) ...", citations=[object()]))
    True
    >>> says("no", Answer("q", "The corpus does not cover this question.", abstained=True))
    False
    """
    opens = answer.text.lstrip().lower()
    if expect == "yes":
        return opens.startswith("yes") and bool(answer.citations)
    return opens.startswith("no") and declined(answer)


def declined(answer: Answer) -> bool:
    """The assistant declined: it abstained and cited nothing."""
    return answer.abstained and not answer.citations


# --- support -----------------------------------------------------------------------------
def claims(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, its markers) for each sentence of `text` that carries a marker, split the
    way the citation check splits (`rag.citations.claims`: per line, markers written
    after the full stop stay with their sentence).

    >>> claims("CvT adds convolutions. [1] It is fast [1][2].\\nNo marker here.")
    [('CvT adds convolutions. [1]', [1]), ('It is fast [1][2].', [1, 2])]
    """
    out = []
    for piece in split_claims(text):  # the answerer's own splitter, so both count the same sentences
        found = list(dict.fromkeys(markers(piece)))
        if found:
            out.append((" ".join(piece.split()), found))
    return out


def support_share(answer: Answer, papers: Mapping[str, Paper], threshold: float) -> float | None:
    """Share of the answer's marked sentences that their cited papers support; None if none.

    The check `rag.citations.validate` makes before keeping a citation, with
    `Settings.support_threshold`: a sentence is supported when every marker in it names a
    citation whose paper gives `rag.text.support_score(sentence, title + " " + abstract) >=
    threshold` (that share of the sentence's content-word stems occurs in the paper). A
    marker without a citation, or citing a paper outside the corpus, supports nothing.

    >>> from rag.models import Citation
    >>> papers = {"p1": Paper("p1", "CvT", "CvT introduces convolutions into ViT.")}
    >>> a = Answer("q", "CvT adds convolutions to ViT [1]. It beats every GAN [1].",
    ...            citations=[Citation(1, "p1", "CvT", "")])
    >>> support_share(a, papers, threshold=0.5)
    0.5
    """
    by_n = {c.n: papers.get(c.paper_id) for c in answer.citations}
    found = claims(answer.text)
    if not found:
        return None
    supported = 0
    for sentence, numbers in found:
        cited = [by_n.get(n) for n in numbers]
        supported += all(p is not None and support_score(sentence, f"{p.title} {p.abstract}") >= threshold
                         for p in cited)
    return supported / len(found)


# --- one question ------------------------------------------------------------------------
def score(item: dict, answer: Answer, ranking: list[str], papers: Mapping[str, Paper],
          support_threshold: float) -> dict[str, float | int | None]:
    """Every metric for one question. `item` is a line of eval/questions.jsonl, `ranking` the
    titles the system retrieved, best first, `papers` the corpus by paper id."""
    gold, acceptable = item.get("gold", []), item.get("acceptable", [])
    ranking = dedupe(ranking)[:RANK_DEPTH]
    cited = cited_titles(answer)
    precision, recall, f1 = citation_scores(cited, gold, acceptable)
    answerable = item["type"] != "unanswerable"
    correct = None
    if item["type"] == "fact":
        correct = fact_correct(answer.text, item["answer_patterns"])
    elif item["type"] == "compare":
        correct = compare_correct(answer.text, cited, gold, item["terms"])
    return {
        "recall@5": recall_at_k(ranking, gold, 5), "recall@10": recall_at_k(ranking, gold, 10),
        "recall@20": recall_at_k(ranking, gold, 20), "mrr": reciprocal_rank(ranking, gold),
        "ndcg@10": ndcg_at_k(ranking, gold, 10),
        "cite_precision": precision, "cite_recall": recall, "cite_f1": f1,
        "invalid_citations": len(invalid_citations(answer, papers.keys())),
        "correct": None if correct is None else float(correct),
        "abstention": None if answerable else float(declined(answer)),
        "false_abstention": float(declined(answer)) if answerable else None,
        "support": support_share(answer, papers, support_threshold),
        "yes_no": float(says(item["expect"], answer)) if item.get("expect") else None,
        "unsupported_removed": len(answer.unsupported),  # LLM sentences taken out: nothing sent supports them
    }


# --- aggregation -------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, interpolating linearly between ranks (numpy's default).

    >>> percentile([4.0, 1.0, 3.0, 2.0], 50)
    2.5
    >>> round(percentile([1.0, 2.0, 3.0, 4.0], 95), 2)
    3.85
    """
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def aggregate(records: list[dict]) -> dict[str, float | int | None]:
    """Combine per-question records ({"scores": {...}, "latency_s": float}) into one row:
    means over the questions a metric applies to, invalid citations and removed unsupported
    sentences summed, latency p50/p95.

    >>> aggregate([{"scores": {"correct": 1.0, "invalid_citations": 0}, "latency_s": 0.1},
    ...            {"scores": {"correct": None, "invalid_citations": 2}, "latency_s": 0.3}])
    {'n': 2, 'invalid_citations': 2, 'correct': 1.0, 'unsupported_removed': 0, 'latency_p50': 0.2, 'latency_p95': 0.29}
    """
    row: dict[str, float | int | None] = {"n": len(records)}
    for metric, how in AGGREGATION.items():
        values = [r["scores"][metric] for r in records if r["scores"].get(metric) is not None]
        if how == "sum":
            row[metric] = sum(values) if values else (0 if records else None)
        elif values:
            row[metric] = sum(values) / len(values)
        elif any(metric in r["scores"] for r in records):
            row[metric] = None
    latencies = [r["latency_s"] for r in records]
    row["latency_p50"] = _round(percentile(latencies, 50))
    row["latency_p95"] = _round(percentile(latencies, 95))
    return row


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def summarize(records: list[dict]) -> dict[str, dict[str, float | int | None]]:
    """{question type: aggregate row} for the types present, plus "overall" over all of them."""
    out = {t: aggregate([r for r in records if r["type"] == t]) for t in TYPES if any(r["type"] == t for r in records)}
    # Sets written by kind of request (eval/realistic_*.jsonl) are also summarised per kind.
    for kind in sorted({r["kind"] for r in records if r.get("kind")}):
        out[f"kind:{kind}"] = aggregate([r for r in records if r.get("kind") == kind])
    out["overall"] = aggregate(records)
    return out
