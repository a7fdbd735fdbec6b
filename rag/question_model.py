"""What kind of answer a question wants, from a model fitted on labelled questions.

People ask for the same answer in endless wordings ("Summarize what the collection says
about X", "give me an overview of X", "I'm new to X, what should I read?"), so the kind is not
read by phrase rules, which grow one wording at a time and fail on the next one. It is a
multinomial logistic regression over sparse features of the question's own words: word
unigrams and bigrams, the opening words, and character trigrams inside words (so typos and
spelling variants share most features: "summarise"/"summarize", "tranformer"/"transformer").
The labelled questions live in `rag/data/question_kinds.jsonl` (written for this purpose, never
taken from the eval sets) and the fitted model in `rag/data/question_model.json`; `python -m
eval.train_questions` refits it deterministically (tests check the packaged file is what the
data gives).

The same fit yields the **frame words**: words far more frequent in questions than in
abstracts ("summarize", "overview", "anyone", "collection", "recommend"). They say how a
question asks, not what about, so search leaves them out (`QuestionModel.topic`).

This module does not decide the answer's shape on its own: a question that names one paper
(title, coined method name, position in the conversation) gets a one-paper answer whatever
its wording; see `rag.questions.analyse`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path

from rag.errors import ConfigError
from rag.text import INTERROGATIVES


class Kind(StrEnum):
    """What a question asks for, and so the answer's shape (docs/questions.md has examples)."""

    LIST = "list"  # the papers on a topic ("papers on point clouds", "which works use X?")
    OVERVIEW = "overview"  # a synthesis of a topic or reading advice ("summarize ...", "what should I read")
    LIMITS = "limits"  # weaknesses, limitations, open problems of something, as the papers state them
    EXISTS = "exists"  # yes or no: does any paper do X ("is there any paper that ...", "has anyone ...")
    FACT = "fact"  # one fact of one paper ("what accuracy does CvT reach?")
    HOW = "how"  # how a method or concept works, what it is ("how does masked image modeling work?")
    COMPARE = "compare"  # named papers or methods side by side
    ORIGIN = "origin"  # the paper that introduced or coined something ("who proposed ...")
    SUPERLATIVE = "superlative"  # the best number across papers ("lowest error on CIFAR-10")
    CHITCHAT = "chitchat"  # asks nothing about papers ("thanks!", "what can you do?")

    @property
    def topical(self) -> bool:
        """Kinds answered with every paper that clearly addresses the topic."""
        return self in (Kind.LIST, Kind.OVERVIEW, Kind.LIMITS, Kind.EXISTS)


MODEL_FILE = "data/question_model.json"  # inside the rag package
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def words(question: str) -> list[str]:
    """Lower-cased word tokens: `words("What's CvT-13's top-1?")` -> ["what's", "cvt-13's", "top-1"]."""
    return _WORD.findall(question.lower())


def features(question: str) -> list[str]:
    """The sparse features of a question, each a string (counted once).

    >>> sorted(features("How does it work?"))[:6]
    ['b:does_it', 'b:how_does', 'b:it_work', 'c:<do', 'c:<ho', 'c:<it']
    """
    toks = words(question)
    out = {f"w:{t}" for t in toks}
    out.update(f"b:{a}_{b}" for a, b in zip(toks, toks[1:]))
    out.update(f"s:{t}" for t in toks[:2])  # the opening words carry most of the frame
    if toks:
        out.add(f"s1:{toks[0]}")
    for t in toks:
        padded = f"<{t}>"
        out.update(f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2))
    if question.rstrip().endswith("?"):
        out.add("q:?")
    out.add(f"n:{min(len(toks), 12) // 3}")  # length bucket: fragments vs sentences
    return sorted(out)


@dataclass(frozen=True)
class Prediction:
    """The kind a question most likely asks for, with the model's probability of each kind."""

    kind: Kind
    probabilities: dict[Kind, float]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.kind]


class QuestionModel:
    """The fitted classifier: `QuestionModel.packaged().predict("give me an overview of GANs").kind`
    -> Kind.OVERVIEW. Weights are sparse: a feature the fit gave no weight is absent."""

    def __init__(self, kinds: list[str], idf: dict[str, float], weights: dict[str, list[float]],
                 bias: list[float], frame: Iterable[str]):
        self.kinds = [Kind(k) for k in kinds]
        self.idf = idf
        self.weights = weights
        self.bias = bias
        self.frame = frozenset(frame)

    @classmethod
    def load(cls, path: Path) -> QuestionModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["kinds"], data["idf"], data["weights"], data["bias"], data["frame"])
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"the question model at {path} cannot be read ({err}); "
                              "refit it with `python -m eval.train_questions`") from None

    @classmethod
    @cache
    def packaged(cls) -> QuestionModel:
        """The model shipped with the package (read once per process)."""
        return cls.load(Path(str(resources.files("rag") / MODEL_FILE)))

    def vector(self, question: str) -> dict[str, float]:
        """TF-IDF weights of the known features, L2-normalised (as the fit saw them)."""
        vec = {f: self.idf[f] for f in features(question) if f in self.idf}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {f: v / norm for f, v in vec.items()}

    def predict(self, question: str) -> Prediction:
        scores = list(self.bias)
        for f, v in self.vector(question).items():
            for i, w in enumerate(self.weights.get(f, ())):
                scores[i] += w * v
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        total = sum(exp)
        probs = {k: e / total for k, e in zip(self.kinds, exp)}
        return Prediction(max(probs, key=probs.get), probs)

    def topic(self, question: str) -> str:
        """The question without its frame words and the interrogatives that open its sentences
        (`rag.text.INTERROGATIVES`): what search looks for.

        With "summarize", "collection" and "say" frame words: `topic("Summarize what the
        collection says about diffusion models")` -> "the says about diffusion models"
        (stop words are left to the analyser). Returns the question itself when nothing but
        frame words is left ("Summarize the collection").
        """
        kept = [w for w in re.split(r"(\s+)", question) if not _frame_word(w, self.frame)]
        # An interrogative that opens a sentence asks ("I use a ResNet. What should I read?");
        # inside one ("which parts of ...") it may be part of the topic.
        sentences = []
        for rest in _SENTENCES.split("".join(kept).strip(" ,;:-")):
            while (first := rest.split(maxsplit=1)) and _frame_word(first[0], INTERROGATIVES):
                rest = first[1].lstrip(" ,;:-") if len(first) > 1 else ""
            sentences.append(rest)
        rest = " ".join(" ".join(sentences).split())
        return rest if any(c.isalnum() for c in rest) else question


_INFLECTIONS = ("s", "es", "d", "ed")  # not "-ing": "explaining models" is a topic, "explain" a frame


def _frame_word(token: str, frame: frozenset[str]) -> bool:
    """Whether a whitespace token is a frame word or a regular inflection of one ("says" of
    "say"; not "report" of "reports": the plain word is the likelier topic, "report generation"),
    punctuation around it ignored."""
    core = words(token)
    if len(core) != 1:
        return False
    word = core[0]
    return word in frame or any(word.endswith(end) and len(word) > len(end) + 2 and word[:-len(end)] in frame
                                for end in _INFLECTIONS)
