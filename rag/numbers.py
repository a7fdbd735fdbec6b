"""Numbers reported in abstracts, read with their metric, for "which paper reports the best X" questions.

A superlative question ("Which paper reports the lowest error on CIFAR-10?") is answered by
comparing numbers, not by the paper that best matches the words. `reported(sentence, metric)`
reads the values a sentence gives for a metric (the number nearest a mention of it, within a
short window), `direction(question, metric)` says whether the question wants the largest or
the smallest, and `best` picks the winner among papers. Pure functions over text: the
extractive answerer (rag/extractive.py) feeds them the candidate papers' sentences.

Metrics are a closed class (accuracy, error, mAP, FPS, parameters, ...), so they are listed
here with whether lower is better; a question naming none is compared on the number nearest
its other words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.text import query_terms

# metric word (regex) -> True when a lower value is better
METRICS: dict[str, bool] = {
    r"error(?:\s+rates?)?|err": True, r"loss": True,
    r"latency|ms|milliseconds?|seconds?|runtime|inference\s+time": True,
    r"param(?:eter)?s?|flops|gflops|macs|memory|model\s+size": True, r"fid|wer|cer|eer|mae|rmse|perplexity": True,
    r"accuracy|acc|top-?1|top-?5": False, r"m?ap(?:50|75)?|average\s+precision|box\s+ap|mask\s+ap": False,
    r"m?iou|dice|f1|f-score|f-measure|auc|psnr|ssim|bleu|rouge|recall|precision|ndcg|mrr": False,
    r"fps|frames?\s+per\s+second|throughput|speed-?up": False,
}
METRIC_NAME = re.compile(  # a metric named in text: "error rate", "mAP", "frames per second"
    r"\b(" + "|".join(f"(?:{m})" for m in METRICS) + r")\b", re.I)
_LOW = re.compile(r"\b(lowest|least|fewest|smallest|minimal|minimum|cheapest|lightest|shortest)\b", re.I)
_HIGH = re.compile(r"\b(highest|most|largest|maximum|greatest|biggest|top|strongest)\b", re.I)
_BEST = re.compile(rf"{_LOW.pattern}|{_HIGH.pattern}|\b(best|worst|better|fastest|slowest|report(?:s|ed)?)\b", re.I)
# A number as a value: not glued to a name ("ResNet-50", "CIFAR-10", "YOLOv3"), not a year,
# and not signed: "+21.3% on STL10" is a gain over another method, not the accuracy reached.
# A count is written with thousands separators ("21,866 images") or a magnitude ("15.4M boxes",
# "1.3B parameters", "4 million", "4.1 GFLOPs"): read as 21866, 15.4e6, 1.3e9, 4e6 and 4.1e9, so
# that "22.8M" is fewer parameters than "1.3B" and "15.4M" more boxes than "21,866".
_VALUE = re.compile(r"(?<![\w.,+\-−±])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*"
                    r"(%|percent|ms|fps|thousand|million|billion|trillion|"
                    r"(?-i:[kKMGT](?:FLOPs?|FLOPS|MACs?)\b|[kKMGBT]\b)|x\b|×)?", re.I)
_MAGNITUDE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "g": 1e9, "b": 1e9, "billion": 1e9,
              "t": 1e12, "trillion": 1e12}
_SCALED_UNIT = re.compile(r"[kmgt]?(flops|macs)", re.I)
WINDOW = 60  # characters between a metric's mention and its value


def without_direction(question: str) -> str:
    """The question without its superlative words, which say which way to compare, not where
    the number is: `without_direction("the lowest error on CIFAR-10")` -> "the  error on CIFAR-10"."""
    return _BEST.sub(" ", question)


def names_in(question: str) -> list[str]:
    """Benchmark- and model-like names: capitalised past the first word, or holding a digit.
    `names_in("best ImageNet top-1 for a plain ResNet-50")` -> ["ImageNet", "top-1", "ResNet-50"]."""
    tokens = re.findall(r"[\w-]+", question)
    return [t for i, t in enumerate(tokens) if (i > 0 and t[:1].isupper()) or re.search(r"\d", t)]


def benchmarks_in(question: str) -> list[str]:
    """The names in a superlative question that are not its metric: where the number must be
    reported. `benchmarks_in("Which paper reports the lowest top-1 error on CIFAR-10?")` ->
    ["CIFAR-10"]; `benchmarks_in("which pretraining variant came out best?")` -> []."""
    return [n for n in names_in(question) if not METRIC_NAME.fullmatch(n) and not _BEST.fullmatch(n)]


def metric_in(text: str) -> str | None:
    """The first metric the text names, lower-cased: `metric_in("lowest error on CIFAR-10")` -> "error"."""
    found = METRIC_NAME.search(text)
    return found.group(1).lower() if found else None


def lower_is_better(metric: str | None) -> bool:
    if metric is None:
        return False
    return next((low for pattern, low in METRICS.items() if re.fullmatch(pattern, metric, re.I)), False)


def direction(question: str, metric: str | None) -> str:
    """"min" or "max": what the question wants of the metric's values.

    `direction("Which paper reports the lowest error?", "error")` -> "min";
    `direction("best top-1 accuracy on ImageNet", "top-1")` -> "max";
    `direction("Which model is the best on CIFAR-10 error?", "error")` -> "min" (best error is the lowest).
    """
    if _LOW.search(question):
        return "min"
    if _HIGH.search(question):
        return "max"
    return "min" if lower_is_better(metric) else "max"


# What a count superlative counts: the words after its superlative ("the most bounding-box
# annotations", "the fewest training images", "the largest number of GPUs").
_COUNTED = re.compile(rf"(?:{_LOW.pattern}|{_HIGH.pattern})\s+"
                      r"(?:(?:in\s+)?(?:the\s+)?(?:total\s+)?(?:number|amount|count)\s+of\s+)?"
                      r"(?P<what>[\w-]+(?:[ \t]+(?!(?:on|in|for|of|across|among|than|with|by)\b)[\w-]+){0,2})", re.I)
# Words that say a number is compared, not what it counts ("the highest value", "the best score").
_UNCOUNTED = frozenset(query_terms("value values score scores result results performance number numbers"))
# Words between a count and the thing it counts ("15.4M bounding boxes": 0; "21,866 training images": 1).
COUNT_WINDOW = 3


def counted(question: str, metric: str | None) -> set[str]:
    """The stems of what a superlative without a metric counts; empty when it names a metric.
    `counted("Which dataset has the most bounding-box annotations?", None)` -> {"bound", "box", "annot"}."""
    if metric is not None:
        return set()
    found = _COUNTED.search(question)
    return _heads(found.group("what")) - _UNCOUNTED if found else set()


def _heads(text: str, most: int | None = None) -> set[str]:
    """The stems of the first `most` words, a hyphenated word by its last part, which names
    what it is: "word-images" are images, "image-level labels" are labels, not images."""
    return set(query_terms(" ".join(w.split("-")[-1] for w in re.findall(r"[\w-]+", text)[:most])))


@dataclass(frozen=True)
class Reported:
    value: float
    text: str  # the number as written, with its unit
    sentence: str


def _mentions(sentence: str, metric: str) -> list[int]:
    """Where a sentence names the metric. A metric of several words stated by the one of them
    that is a metric itself ("box AP" as "64.3% AP on COCO", where box AP is the default;
    "error rate" as "top-1 error of 3.6%") counts, unless another qualifier makes it another
    metric ("mask AP")."""
    # A unit with a magnitude prefix is the same metric at another scale ("GFLOPs", "600M
    # FLOPs"): the values are read at their size, so either mention counts.
    scaled = _SCALED_UNIT.fullmatch(metric)
    pattern = rf"(?<![^\W\d_])\d*[kmgt]?{scaled.group(1)}" if scaled else rf"\b{re.escape(metric)}"
    found = [m.start() for m in re.finditer(pattern, sentence, re.I)]
    words = metric.split()
    if found or len(words) == 1:
        return found
    heads = [w for w in words if METRIC_NAME.fullmatch(w)]
    return [m.start(2) for head in heads for m in re.finditer(rf"(\w+\s+)?\b({re.escape(head)})\b", sentence, re.I)
            if not (m.group(1) and METRIC_NAME.fullmatch(f"{m.group(1).strip()} {head}"))]


def reported(sentence: str, metric: str | None, about: Callable[[str], bool] | None = None,
             counting: set[str] = frozenset()) -> list[Reported]:
    """The values a sentence reports for `metric` (any number when `metric` is None); with
    `about`, only those stated for the benchmark it recognises; with `counting` (the stems of
    `counted`), only the counts of those things ("15.4M bounding boxes", not "9.2M images").

    >>> [r.value for r in reported("Our model reaches 2.1% error on CIFAR-10 and 15.6% on CIFAR-100.", "error")]
    [2.1]
    >>> [r.value for r in reported("ResNet-50 trained in 2019 gets 76.1% top-1 accuracy.", "accuracy")]
    [76.1]

    A sentence can report one metric for several benchmarks ("68.4% PQ and 83.5% mIoU on
    Cityscapes, and ADE20K val with 55.2% mIoU"): with `about`, the sentence is read clause by
    clause (split at commas and semicolons), a clause is about the benchmark its names are, one
    without names continues the clause before, and each mention of the metric in a clause
    about the benchmark gives its nearest value.
    """
    if about is None:
        return _nearest(sentence, metric, first_only=True, sentence=sentence, counting=counting)
    out, current = [], False
    for n, clause in enumerate(re.split(r"[,;]", sentence)):
        if names_a_benchmark(clause, opens_sentence=n == 0):
            current = about(clause)
        if current:
            out += _nearest(clause, metric, first_only=False, sentence=sentence, counting=counting)
    return out


_BEFORE_BENCHMARK = re.compile(r"\b(?:on|in|of|for|across|over)\s+(?:the\s+)?$", re.I)
_AFTER_BENCHMARK = re.compile(r"^[\s\w-]{0,12}?\b(?:val\w*|test\w*|validation|set|dataset|benchmark|split)\b", re.I)


def names_a_benchmark(clause: str, opens_sentence: bool = True) -> bool:
    """Whether a clause names a dataset or benchmark: a capitalised word (not the one that
    opens the sentence) or letters with digits, placed as benchmarks are ("on ADE20K", "of
    CIFAR-10", "Cityscapes val set", "COCO box AP"). A model named as the subject ("NASNet
    achieves 2.4% error") is not one, nor is a metric ("top-1") or a bare number.

    `names_a_benchmark(" and 62.1% mIoU on ADE20K val", False)` -> True;
    `names_a_benchmark(" we reach 76% mIoU on the Pascal VOC 2012 dataset", False)` -> True;
    `names_a_benchmark(" NASNet achieves 2.4% error rate", False)` -> False.
    """
    for i, m in enumerate(re.finditer(r"[A-Za-z][\w-]*", clause)):
        t = m.group(0)
        if METRIC_NAME.fullmatch(t) or not ((i > 0 or not opens_sentence) and t[:1].isupper() or re.search(r"\d", t)):
            continue
        after = clause[m.end():]
        if _BEFORE_BENCHMARK.search(clause[:m.start()]) or _AFTER_BENCHMARK.match(after) \
                or METRIC_NAME.match(after.lstrip()):
            return True
    return False


def _nearest(text: str, metric: str | None, first_only: bool, sentence: str,
             counting: set[str] = frozenset()) -> list[Reported]:
    """The numbers within WINDOW characters of a mention of `metric` in `text` (every number
    when `metric` is None): the single nearest (`first_only`) or the nearest to each mention;
    each reported as stated in `sentence` (the one `text` is, or a clause of it). With
    `counting`, only numbers followed within COUNT_WINDOW words by a word of it."""
    mentions = _mentions(text, metric) if metric else []
    if metric and not mentions:
        return []
    values = []
    for m in _VALUE.finditer(text):
        number = float(m.group(1).replace(",", ""))
        if m.group(2) is None and (1900 <= number <= 2100 and "." not in m.group(1)):
            continue  # a year
        if counting and not counting & _heads(text[m.end():], COUNT_WINDOW):
            continue  # counts something else ("9.2M images" when boxes are asked)
        unit = (m.group(2) or "").lower()
        number *= _MAGNITUDE.get(unit[:1] if _SCALED_UNIT.fullmatch(unit) else unit, 1.0)
        values.append((m.start(), Reported(number, m.group(0).strip(), sentence)))
    if not mentions:
        return [r for _, r in values]
    near = []
    for p in mentions:
        dist, rep = min(((abs(start - p), r) for start, r in values), default=(WINDOW + 1, None), key=lambda x: x[0])
        if rep is not None and dist <= WINDOW and rep not in [r for _, r in near]:
            near.append((dist, rep))
    near.sort(key=lambda pair: pair[0])
    return [r for _, r in (near[:1] if first_only else near)]


def best(values: dict[str, Reported], want: str) -> str | None:
    """The key of the best value (`want` "min" or "max"); ties go to the first key."""
    if not values:
        return None
    pick = min if want == "min" else max
    return pick(values, key=lambda k: values[k].value)
