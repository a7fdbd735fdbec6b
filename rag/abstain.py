"""Decide whether the corpus covers a question: a logistic model over first-pass evidence.

A single similarity threshold cannot separate "paraphrased but covered" from "plausible but
absent" questions (their best dense similarities overlap). Four features of the first
retrieval pass (before pseudo-relevance feedback, which would inflate them) separate them
better:
- `dense`: best chunk cosine similarity among the top 5 papers;
- `cover_max`: best share of the question's IDF mass found in one top-5 paper (title+abstract);
- `cover_top`: that share for the top paper;
- `unknown`: share of the question's IDF mass in words no abstract contains.
`P(uncovered) = sigmoid(w . features + b)`; the assistant abstains when it reaches
`Settings.abstain_threshold`. The features depend on the embedder's similarity scale, so each
embedding model has its own weights, `rag/abstain_models/<model slug>.json` (package data),
fitted by `python -m eval.calibrate` with cross-validation (docs/architecture.md, "Abstention").

`should_abstain` is the whole decision; the pipeline only calls it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rag.errors import ConfigError
from rag.models import Source
from rag.text import Idf, query_terms, terms

MODELS_DIR = "abstain_models"  # inside the rag package
FEATURES = ("dense", "cover_max", "cover_top", "unknown")


def coverage(question_terms: set[str], src: Source, idf: Callable[[str], float]) -> float:
    """Share of the question's IDF mass found in the paper's title and abstract (0..1).
    `coverage({"cnn", "vit"}, <a paper mentioning only ViTs>, idf)` -> about 0.5."""
    mass = sum(idf(t) for t in question_terms) or 1.0
    return sum(idf(t) for t in question_terms & set(terms(f"{src.title} {src.paper.abstract}"))) / mass


def features(question: str, first: list[Source], idf: Callable[[str], float],
             known: Callable[[str], bool]) -> dict[str, float]:
    """Evidence features of a first-pass ranking; see the module docstring."""
    q = set(query_terms(question))
    mass = sum(idf(t) for t in q) or 1.0
    top = first[:5]
    covers = [coverage(q, s, idf) for s in top]
    return {
        "dense": max((s.dense or 0.0 for s in top), default=0.0),
        "cover_max": max(covers, default=0.0),
        "cover_top": covers[0] if covers else 0.0,
        "unknown": sum(idf(t) for t in q if not known(t)) / mass,
    }


@dataclass(frozen=True)
class AbstainModel:
    weights: dict[str, float]
    bias: float

    @classmethod
    def load(cls, path: Path) -> AbstainModel:
        """The model stored at `path` (a file `python -m eval.calibrate --write` wrote)."""
        data = json.loads(Path(path).read_text())
        return cls(weights={k: float(data["weights"][k]) for k in FEATURES}, bias=float(data["bias"]))

    @classmethod
    def for_embedder(cls, slug: str) -> AbstainModel:
        """The packaged model fitted for embedding model `slug` (`rag.embedding.model_slug`).
        Raises ConfigError when none was fitted: its scores would be meaningless."""
        path = model_file(slug)
        if not path.is_file():
            raise ConfigError(f"no abstention model is fitted for embedding model {slug!r}; "
                              f"run `python -m eval.calibrate --write` with that model")
        return cls.load(path)

    def probability(self, feats: dict[str, float]) -> float:
        """P(the corpus does not cover the question)."""
        z = self.bias + sum(self.weights[k] * feats[k] for k in FEATURES)
        return 1.0 / (1.0 + math.exp(-z))


def model_file(slug: str) -> Path:
    """Where the abstention model for embedding model `slug` lives (package data)."""
    return Path(str(resources.files("rag") / MODELS_DIR / f"{slug}.json"))


def should_abstain(text: str, first: list[Source], model: AbstainModel, idf: Idf, mode: str,
                   threshold: float) -> bool:
    """Too little evidence to answer `text` from the first-pass ranking `first`: the
    calibrated model says the corpus does not cover it. BM25-only runs (`mode="bm25"`) have no
    dense score for the model, so there only "no abstract shares a word with the question"
    abstains. An empty ranking always abstains."""
    if not first:
        return True
    if mode == "bm25":
        return not any(src.bm25 for src in first[:5])
    return model.probability(features(text, first, idf, idf.__contains__)) >= threshold
