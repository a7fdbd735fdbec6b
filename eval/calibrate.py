"""Fit the abstention model (rag/abstain.py) on the eval set, with cross-validated figures.

    python -m eval.calibrate [--model NAME] [--write]

Labels: unanswerable questions are "not covered", every other non-follow-up question is
"covered". Features come from the first retrieval pass of the default configuration. The
script reports 7-fold cross-validated decline / false-abstention rates and ROC AUC (what to
expect on unseen questions), the same for the model fitted on all of them on the held-out
generalisation set (never fitted on), and with `--write` stores the model fitted on all questions in
rag/abstain_models/<model slug>.json together with those figures. One model per embedder,
because each embedder's cosines live on its own scale; `--model` (or RAG_EMBED_MODEL) picks
the embedder, whose index must be ingested. Only the four weights and the bias are fitted: no
rule looks at the wording of any question.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

from rag.abstain import FEATURES, AbstainModel, model_file
from rag.embedding import model_slug
from rag.settings import Settings

QUESTIONS = Path(__file__).with_name("questions.jsonl")
HELD_OUT = Path(__file__).with_name("generalization.jsonl")  # never fitted on: a transfer check only
CLASS_WEIGHT = {0: 1.0, 1: 3.0}  # a missed abstention (invented answer) costs more than a false one
C = 1.0


def feature_table(settings: Settings, questions: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    from rag.pipeline import build_pipeline

    # Only the features are read; a placeholder model lets an embedder that has none yet be fitted.
    placeholder = AbstainModel(weights=dict.fromkeys(FEATURES, 0.0), bias=0.0)
    pipe = build_pipeline(settings, abstainer=placeholder)
    xs, ys = [], []
    for q in questions:
        if q["type"] == "followup":
            continue
        feats = pipe.abstain_features(q["question"], settings)
        xs.append([feats[k] for k in FEATURES])
        ys.append(q["type"] == "unanswerable")
    return np.array(xs), np.array(ys)


def rates(prob: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    """(declined, false abstention) at `threshold`: `rates([0.9, 0.2, 0.6], [T, F, F], 0.5)` -> (1.0, 0.5)."""
    return float((prob[y] >= threshold).mean()), float((prob[~y] >= threshold).mean())


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="store the fitted model in rag/abstain_models/<model slug>.json")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--model", help="embedding model to fit for (default: RAG_EMBED_MODEL, else the default)")
    args = parser.parse_args(argv)

    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    settings = Settings(**({"embed_model": args.model} if args.model else {}))
    x, y = feature_table(settings, questions)
    model = LogisticRegression(C=C, class_weight=CLASS_WEIGHT)
    folds = StratifiedKFold(7, shuffle=True, random_state=0)
    prob = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    declined, false = rates(prob, y, args.threshold)
    auc = float(roc_auc_score(y, prob))
    print(f"7-fold CV at threshold {args.threshold}: unanswerable declined {declined:.3f}, "
          f"false abstention {false:.3f}, ROC AUC {auc:.3f} "
          f"({int(y.sum())} unanswerable, {int((~y).sum())} answerable)")
    model.fit(x, y)
    held = [json.loads(line) for line in HELD_OUT.read_text().splitlines() if line.strip()]
    xh, yh = feature_table(settings, held)
    prob_h = model.predict_proba(xh)[:, 1]
    held_declined, held_false = rates(prob_h, yh, args.threshold)
    held_auc = float(roc_auc_score(yh, prob_h))
    print(f"{HELD_OUT.name} (not fitted on) at threshold {args.threshold}: declined {held_declined:.3f}, "
          f"false abstention {held_false:.3f}, ROC AUC {held_auc:.3f}")
    fitted = {
        "weights": dict(zip(FEATURES, map(float, model.coef_[0]))), "bias": float(model.intercept_[0]),
        "embed_model": settings.embed_model,
        "fitted_on": f"{QUESTIONS.name}: {len(y)} questions", "date": date.today().isoformat(),
        "cv_declined": round(declined, 3), "cv_false_abstention": round(false, 3), "cv_auc": round(auc, 3),
        "held_out": {"questions": HELD_OUT.name, "declined": round(held_declined, 3),
                     "false_abstention": round(held_false, 3), "auc": round(held_auc, 3)},
    }
    print(json.dumps(fitted, indent=2))
    if args.write:
        path = model_file(model_slug(settings.embed_model))
        path.write_text(json.dumps(fitted, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
