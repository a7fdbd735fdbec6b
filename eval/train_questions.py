"""Fit the question-kind model (rag/question_model.py) on the labelled questions, with figures.

    python -m eval.train_questions [--write] [--data FILE]

The labelled questions (`rag/data/question_kinds*.jsonl`) are split once, by a hash of each
question's text, into a fitting part (80%) and a test part (20%) that is never fitted on.
On the fitting part, 5-fold stratified cross-validation picks the regularisation strength;
the model fitted on the whole fitting part is then scored on the test part. Everything is
deterministic (a fixed split, lbfgs, no shuffling without a seed), so `--write` run twice
writes the same file, and a test holds the packaged model to what the data gives.

Rows marked `"boundary": true` (question_kinds_refs.jsonl) are fitted like the others but
not counted for frame words (see `train`).

Frame words are counted here too: words that at least FRAME_MIN of the questions hold, that
are FRAME_RATIO times more frequent in questions than in the bundled abstracts, and that the
fitted model weighs (FRAME_WEIGHT: a word that tells the kind, not a topic the examples
happen to repeat, such as "crowd counting"); or, less lopsided in frequency (KIND_RATIO), that
the model weighs heavily (KIND_WEIGHT: "overview", "should", "explain", "limitations" decide
the kind, and no topic word reaches that weight); except
name-like tokens (an inner capital or a digit: "CvT", "YOLOv3"; or capitalised inside a
question: "Swin"), which name a topic however often the examples use them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np

from rag.numbers import METRIC_NAME
from rag.question_model import MODEL_FILE, Kind, QuestionModel, features, words
from rag.text import INTERROGATIVES

DATA = Path(str(resources.files("rag") / "data"))  # every question_kinds*.jsonl in it
TEST_SHARE = 20  # percent of the questions held out (by hash), never fitted on
MIN_DF = 2  # a feature seen in fewer fitting questions carries no weight
C_GRID = (10.0, 30.0, 100.0)
FRAME_MIN = 5  # questions that must use a word for it to be a frame word (a count: adding examples keeps it)
FRAME_RATIO = 10.0
FRAME_WEIGHT = 1.0  # the fitted model's largest |weight| for the word: it tells the kind, not the topic
FRAME_C = 30.0  # the regularisation of the fit whose weights FRAME_WEIGHT and KIND_WEIGHT are measured on
KIND_RATIO = 3.0  # a word the model leans on this heavily is a frame word at this smaller ratio
# Kind-telling words weigh more at FRAME_C ("should" 1.92, "difference" 1.89, "behind" 1.88)
# than the topic words the examples repeat ("rate" 1.81, "term" 1.79, "resolution" 1.3).
KIND_WEIGHT = 1.85
CHAT_MIN = 2  # small-talk examples that use a word no abstract has: a greeting, not a topic
FILLER_KINDS = 3  # kinds whose examples use a word no abstract has: how people ask ("pls", "u"), not what
FILLER_RATIO = 30.0  # or that nearly none has: "pls" (a PLS regression in 3 abstracts), "u" (U-Net's "u")
PHRASE_SHARE = 0.5  # a word used with the same topic word this often is part of a topic ("crowd counting")
_NAME_LIKE = re.compile(r"[a-z][A-Z]|\d")
_SENTENCE_END = re.compile(r"[.!?:]$")
_PRONOUN_I = frozenset({"i", "i'm", "i've", "i'd", "i'll"})  # capitalised wherever they stand


def load(path: Path = DATA) -> list[dict]:
    """The labelled questions of a file, or of every question_kinds*.jsonl in a directory."""
    files = sorted(Path(path).glob("question_kinds*.jsonl")) if Path(path).is_dir() else [Path(path)]
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        Kind(row["kind"])  # an unknown kind is an error in the data, not a new class
    return rows


def held_out(question: str) -> bool:
    """The fixed split: a question is in the test part when its hash says so."""
    return int(hashlib.sha256(question.encode()).hexdigest(), 16) % 100 < TEST_SHARE


def _matrix(rows: list[dict], vocab: dict[str, int], idf: np.ndarray):
    from scipy.sparse import csr_matrix

    data, cols, ptr = [], [], [0]
    for row in rows:
        idx = sorted(vocab[f] for f in features(row["question"]) if f in vocab)
        vals = idf[idx]
        norm = float(np.sqrt((vals ** 2).sum())) or 1.0
        data += list(vals / norm)
        cols += idx
        ptr.append(len(cols))
    return csr_matrix((data, cols, ptr), shape=(len(rows), len(vocab)))


def _vocabulary(rows: list[dict]) -> tuple[dict[str, int], np.ndarray]:
    df = Counter(f for row in rows for f in features(row["question"]))
    names = sorted(f for f, c in df.items() if c >= MIN_DF)
    n = len(rows)
    idf = np.array([math.log((1 + n) / (1 + df[f])) + 1.0 for f in names])
    return {f: i for i, f in enumerate(names)}, idf


def _fit(rows: list[dict], c: float):
    from sklearn.linear_model import LogisticRegression

    vocab, idf = _vocabulary(rows)
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(_matrix(rows, vocab, idf), [row["kind"] for row in rows])
    return clf, vocab, idf


def _accuracy(clf, vocab, idf, rows: list[dict]) -> float:
    predicted = clf.predict(_matrix(rows, vocab, idf))
    return float(np.mean([p == row["kind"] for p, row in zip(predicted, rows)]))


def cross_validate(rows: list[dict], c: float, folds: int = 5) -> float:
    """Mean accuracy over stratified folds (fold = rank of the question's hash within its kind)."""
    fold_of = {}
    for kind in sorted({r["kind"] for r in rows}):
        same = sorted((r["question"] for r in rows if r["kind"] == kind),
                      key=lambda q: hashlib.sha256(q.encode()).hexdigest())
        fold_of.update({q: i % folds for i, q in enumerate(same)})
    scores = []
    for k in range(folds):
        fit = [r for r in rows if fold_of[r["question"]] != k]
        test = [r for r in rows if fold_of[r["question"]] == k]
        scores.append(_accuracy(*_fit(fit, c), test))
    return float(np.mean(scores))


def frame_words(questions: list[str], abstracts: list[str], kinds: list[str] | None = None,
                weight: dict[str, float] | None = None) -> list[str]:
    """Words that say how a question asks, not what about (see the module docstring); with
    `kinds` (each question's label), also
    - the words no abstract uses that at least CHAT_MIN small-talk examples use ("hello",
      "hey": a greeting before a question names no topic);
    - chat words: words no abstract uses, or nearly none (FILLER_RATIO), that FRAME_MIN
      examples of FILLER_KINDS different kinds use, not mostly with the same topic word
      ("pls", "newbie", "rundown" go with any topic; "counting", which no abstract here
      uses either, goes with "crowd" in most of its examples: it is a topic)."""
    q_df = Counter(w for q in questions for w in set(words(q)))
    q_total = sum(len(words(q)) for q in questions) or 1
    q_count = Counter(w for q in questions for w in words(q))
    a_count = Counter(w for a in abstracts for w in words(a))
    a_total = sum(a_count.values()) or 1
    # Names: a token with an inner capital or a digit ("CvT", "YOLOv3"), or capitalised
    # anywhere but at the start of a sentence ("Swin", "Transformer-XL"); "I" and "I'm" are
    # capitalised wherever they stand.
    name_like = {w.lower() for q in questions for toks in [re.findall(r"\S+", q)] for i, w in enumerate(toks)
                 if _NAME_LIKE.search(w) or (i > 0 and w[:1].isupper() and not _SENTENCE_END.search(toks[i - 1])
                                             and not set(words(w)[:1]) & _PRONOUN_I)}
    name_like = {t for w in name_like for t in words(w)}
    # Interrogatives are left to `QuestionModel.topic`, which drops only the opening one: inside
    # a question one may belong to the topic ("which parts of the input drove the decision").
    # What a number measures is what a question asks about, never how it asks: the words the
    # abstracts use inside a metric's name ("error rate", "model size", "frame rate") stay in
    # the search, however often superlative and fact examples use them.
    measured = {w for a in abstracts for found in METRIC_NAME.finditer(a) for w in words(found.group())}
    candidates = [w for w in q_df if w not in name_like and w not in INTERROGATIVES and w not in measured
                  and not _typo(w, a_count)]

    def ratio(w: str) -> float:
        return (q_count[w] / q_total) / ((a_count[w] + 1) / a_total)

    out = set()
    for w in candidates:
        told = weight.get(w, 0.0) if weight is not None else FRAME_WEIGHT
        if q_df[w] >= FRAME_MIN and told >= FRAME_WEIGHT and \
                (ratio(w) >= FRAME_RATIO or (ratio(w) >= KIND_RATIO and told >= KIND_WEIGHT)):
            out.add(w)
    if kinds is None:
        return sorted(out)
    chat_df = Counter(w for q, k in zip(questions, kinds) if k == Kind.CHITCHAT for w in set(words(q)))
    asked_as: dict[str, set[str]] = {}
    for q, k in zip(questions, kinds):
        for w in words(q):
            asked_as.setdefault(w, set()).add(k)
    # A topic word is a word of the abstracts, of three letters or more, that few questions
    # use ("crowd"); not "can", "the", "papers" or the "q" of "quick q". A word that asks in
    # most questions can still make a phrase in a few: "report" in "radiology report".
    uncommon = len(questions) * 0.02
    topic_word = {w for w in q_df if q_df[w] < uncommon and a_count[w] and len(w) > 2}
    together: dict[str, Counter] = {}
    for q in questions:
        ws = set(words(q))
        for w in ws:
            together.setdefault(w, Counter()).update(ws & topic_word - {w})

    def tied(w: str) -> bool:
        return any(n >= PHRASE_SHARE * q_df[w] for n in together[w].values())

    for w in candidates:
        if a_count[w] == 0 and chat_df[w] >= CHAT_MIN:
            out.add(w)
        elif (a_count[w] == 0 or ratio(w) >= FILLER_RATIO) and q_df[w] >= FRAME_MIN \
                and len(asked_as[w]) >= FILLER_KINDS and not tied(w):
            out.add(w)
    return sorted(out)


def _typo(word: str, abstract_counts: Counter) -> bool:
    """A word the abstracts never use that is one edit from one they use often: a typo the
    examples repeat ("tranformers"), not a frame word."""
    from rag.spelling import MIN_LENGTH, edits1, english

    if len(word) < MIN_LENGTH or abstract_counts[word] or english()(word):  # "came" is no typo of "case"
        return False
    return any(abstract_counts[e] >= 5 for e in edits1(word))


def bundled_abstracts() -> list[str]:
    from rag.corpus import load_papers
    from rag.settings import BUNDLED_CORPUS

    papers, _ = load_papers([BUNDLED_CORPUS])
    return [f"{p.title} {p.abstract}" for p in papers]


def train(rows: list[dict]) -> tuple[dict, dict]:
    """The model as JSON data, and the figures that describe its fit."""
    fit_rows = [r for r in rows if not held_out(r["question"])]
    # Boundary examples teach where one kind ends and the next begins, in repeated templates
    # ("... anything on that or nah?" a dozen times): they say nothing of the words people ask
    # with, so frame words are counted, and their weights read, on the other examples only.
    asking_rows = [r for r in fit_rows if not r.get("boundary")]
    test_rows = [r for r in rows if held_out(r["question"])]
    cv = {c: cross_validate(fit_rows, c) for c in C_GRID}
    best = max(C_GRID, key=lambda c: (round(cv[c], 4), -c))  # ties: the stronger regularisation
    clf, vocab, idf = _fit(fit_rows, best)
    # The frame-word thresholds on weights are on the scale of one regularisation strength:
    # the cross-validated one moves as examples are added, and weights grow with it.
    frame_clf, frame_vocab = _fit(asking_rows, FRAME_C)[:2]
    frame_weight = {f[2:]: float(np.abs(frame_clf.coef_[:, i]).max())
                    for f, i in frame_vocab.items() if f.startswith("w:")}
    kinds = [str(k) for k in clf.classes_]
    names = sorted(vocab, key=vocab.get)
    weights = {}
    for f, i in zip(names, range(len(names))):
        col = clf.coef_[:, i]
        if np.abs(col).max() >= 1e-3:
            weights[f] = [round(float(w), 4) for w in col]
    model = {
        "kinds": kinds,
        "idf": {f: round(float(idf[vocab[f]]), 4) for f in names if f in weights},
        "weights": weights,
        "bias": [round(float(b), 4) for b in clf.intercept_],
        "frame": frame_words([r["question"] for r in asking_rows], bundled_abstracts(),
                             [r["kind"] for r in asking_rows], frame_weight),
    }
    loaded = QuestionModel(model["kinds"], model["idf"], model["weights"], model["bias"], model["frame"])
    test_acc = float(np.mean([loaded.predict(r["question"]).kind == r["kind"] for r in test_rows])) \
        if test_rows else None
    per_kind = {k: round(float(np.mean([loaded.predict(r["question"]).kind == k
                                        for r in test_rows if r["kind"] == k])), 3)
                for k in kinds if any(r["kind"] == k for r in test_rows)}
    figures = {"questions": len(rows), "fitted": len(fit_rows), "held_out": len(test_rows), "C": best,
               "cv_accuracy": {str(c): round(v, 4) for c, v in cv.items()},
               "held_out_accuracy": None if test_acc is None else round(test_acc, 4),
               "held_out_accuracy_by_kind": per_kind, "features": len(weights), "frame_words": len(model["frame"])}
    model["figures"] = figures
    return model, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="labelled questions (JSON lines: question, kind), or a directory of question_kinds*.jsonl")
    parser.add_argument("--write", action="store_true", help=f"write the model to rag/{MODEL_FILE}")
    args = parser.parse_args(argv)
    model, figures = train(load(args.data))
    print(json.dumps(figures, indent=1))
    if args.write:
        out = Path(str(resources.files("rag") / MODEL_FILE))
        out.write_text(json.dumps(model, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
