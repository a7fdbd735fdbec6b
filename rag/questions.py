"""What a question asks: checks, its kind, the papers it names, and what it leans on.

`analyse(question, history, names, model)` turns a raw question into a typed `Query`: the
text as asked and as searched, its `Kind` (from the fitted question model,
`rag.question_model`), whether it is a follow-up, the papers it is restricted to (a
follow-up's previous answer), and the papers it names. No retrieval happens here.

What is decided from wording here is only structure:
- the kind comes from a model fitted on labelled questions, not from phrase rules;
- a question that *identifies* one paper (its title, a method name that paper coins, a
  position in the conversation) is about that paper, whatever its kind (`Query.single`);
- `rag.conversation` reads references back into the conversation ("those", "the second", "it");
- `requested_count` reads a number of papers asked for ("give me 3 papers ...").
Search text drops the question's frame words (`QuestionModel.topic`), so "Summarize what the
collection says about X" searches for X.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag import conversation, numbers
from rag.conversation import Message
from rag.errors import QuestionError
from rag.names import NameIndex
from rag.question_model import Kind, Prediction, QuestionModel
from rag.text import NUMBER_WORDS


def check_question(question: object, max_chars: int) -> str:
    """The question, whitespace-normalised, or QuestionError.

    `check_question("  what is CvT?\\n", 2000)` -> "what is CvT?"; `check_question("", 2000)` raises.
    """
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    if len(question) > max_chars:
        raise QuestionError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}")
    # Control characters and lone surrogates (undecodable bytes smuggled in through argv or a
    # form) are refused; unassigned code points are not, since they include emoji newer
    # than this Python's Unicode tables.
    bad = sorted({f"U+{ord(c):04X}" for c in question if unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r"})
    if bad:
        raise QuestionError(f"the question contains control or binary characters ({', '.join(bad[:5])})")
    text = " ".join(question.split())
    if not text:
        raise QuestionError("the question is empty")
    if not any(c.isalnum() for c in text):
        raise QuestionError("the question has no words, only punctuation or symbols")
    return text


# Class: requests that quantify the papers they want ("Give me 3 papers on pruning", "the top
# five works on GANs", "list 10 studies ..."): a numeral right before a noun for papers.
_DOC = r"(?:papers?|articles?|works?|studies|publications?|abstracts?|references?|readings?)"
_COUNTED = re.compile(rf"\b(?:top\s+)?(\d{{1,3}}|{'|'.join(NUMBER_WORDS)})\s+(?:\w+\s+)?{_DOC}\b", re.I)


def requested_count(question: str) -> int | None:
    """How many papers the question asks for, when it says: `requested_count("Give me 3 papers
    on pruning")` -> 3, "the top five works on GANs" -> 5, "recommend two good papers" -> 2;
    "Which papers use ResNet-50?" -> None."""
    found = _COUNTED.search(question)
    if not found:
        return None
    word = found.group(1).lower()
    count = int(word) if word.isdigit() else NUMBER_WORDS[word]
    return count if count > 0 else None


# Below this probability of its kind the model is unsure: a message read as small talk is then
# searched as a topic (a reply with no search would lose a question), and the evidence decides
# whether the answer is about one paper (`rag.evidence.concentrated`).
MIN_CONFIDENCE = 0.5
# Kinds whose answer is about one paper when the question identifies one ("How does CvT add
# convolutions?", "Who proposed LoFTR?", "limitations of ConvNeXt"); a list or a yes/no over
# the corpus keeps its shape ("Which papers build on CvT?").
_SINGLE_WHEN_NAMED = (Kind.FACT, Kind.HOW, Kind.ORIGIN, Kind.LIMITS, Kind.OVERVIEW)


@dataclass(frozen=True)
class Query:
    """A question as the pipeline works with it.

    `text` is what evidence is judged against: the question, or for a follow-up that is not
    restricted to earlier papers, the previous question and this one together; `searched` is
    `text` without its frame words. `restrict` (paper ids) limits a follow-up to the papers
    the previous answer cited; `named` are the papers the question names (any name), `titled`
    those it identifies by title, short name or a method name its paper coins."""

    asked: str
    text: str
    searched: str
    kind: Kind
    follow_up: bool = False
    restrict: tuple[str, ...] | None = None
    named: tuple[str, ...] = ()
    titled: tuple[str, ...] = ()
    limit: int | None = None  # the number of papers asked for ("Give me 3 papers ..."), when said
    shown: str = ""  # for "tell me more": the previous answer's text, whose sentences are not repeated
    each: bool = False  # a follow-up about each earlier paper ("What did they find?"): all of them answer
    confidence: float = 1.0  # the question model's probability of `kind`
    years: tuple[int, int] | None = None  # a year range the question states (read by the LLM understanding)

    def __post_init__(self):
        object.__setattr__(self, "kind", Kind(self.kind))  # "list" given as text is Kind.LIST

    @property
    def uncertain(self) -> bool:
        """The question model gave no kind a clear probability: the evidence decides the shape."""
        return self.confidence < MIN_CONFIDENCE

    @property
    def single(self) -> bool:
        """The question identifies the one paper it is about."""
        return bool(self.titled) and self.kind in _SINGLE_WHEN_NAMED


def fit_kind(kind: Kind, named: int) -> Kind:
    """The kind, with one structural correction: a comparison needs two things to compare, so
    with fewer than two named papers COMPARE is a concept question ("How do anchor-free
    detectors differ from anchor-based ones?"), answered as HOW."""
    return Kind.HOW if kind == Kind.COMPARE and named < 2 else kind


def classify(question: str, model: QuestionModel, named: int = 0) -> Prediction:
    """The model's prediction, decided in two steps: first a topic (list, overview, limits,
    yes/no) or not, by the summed probability of the topic kinds, then the likeliest kind on
    that side; corrected by `fit_kind`. A question the model splits between "list" and
    "overview" is a topic question even when a one-paper kind is the single likeliest."""
    pred = model.predict(question)
    probs = pred.probabilities
    topical = sum(p for k, p in probs.items() if k.topical) >= 0.5
    kind = max((k for k in probs if k.topical == topical), key=probs.get)
    return Prediction(fit_kind(kind, named), probs)


def _without_pointers(question: str) -> str:
    rest = conversation.without_pointers(question)
    return " ".join(rest.split()) if any(c.isalnum() for c in rest) else question


def masked_names(question: str, mentions) -> str:
    """The question with each named paper or method replaced by "X".

    With a mention of "CvT" at 5-8: `masked_names("Does CvT use ImageNet?", ...)` -> "Does X use ImageNet?"."""
    for m in sorted(mentions, key=lambda m: -m.start):
        question = f"{question[:m.start]}X{question[m.end:]}"
    return question


def analyse(question: str, history: list[Message] | None, names: NameIndex, follow_up: bool | None = None,
            model: QuestionModel | None = None) -> Query:
    """The typed `Query` for a checked question; `follow_up` forces or forbids follow-up
    handling (None: decided from the question and history); `model` is the question model
    (default: the packaged one)."""
    model = model or QuestionModel.packaged()
    positions = conversation.ordinals(question)
    turn = conversation.listing_turn(history, positions) if positions else conversation.previous_turn(history)
    if follow_up is None:
        follow_up = conversation.points_back(question, turn)
    restrict: list[str] = []
    if follow_up:
        restrict = list(turn.cited_ids)
        for title in turn.cited_titles:
            restrict += [pid for pid in names.by_title(title) if pid not in restrict]
        picked = [restrict[n - 1 if n > 0 else n] for n in positions if abs(n) <= len(restrict)]
        restrict = list(dict.fromkeys(picked)) or restrict
    mentions = names.mentions(question)
    named = tuple(dict.fromkeys(pid for m in mentions for pid in m.paper_ids))
    # Names that identify their paper: a title, a short name, or a method name its paper coins.
    identifying = [m for m in mentions if m.strong or m.coined]
    swapped = any(not set(m.paper_ids) & set(restrict)
                  for m in identifying if conversation.only_names(question, m.start, m.end))
    # Papers picked by position count as named: "How does the first compare with the second?".
    # "And ConViT?" after "What does CvT propose?" asks the earlier question of another paper.
    # The kind is read from the question's frame, its names masked: a quoted title's words say
    # which paper, not what is asked of it ("Compare '<title>' with '<title>'").
    asked = turn.question if swapped and turn.question else question
    masked = asked if asked is not question else masked_names(question, mentions)
    pred = classify(masked, model, len(named) + (len(positions) if follow_up else 0))
    kind = pred.kind
    if follow_up and kind == Kind.CHITCHAT:
        kind = Kind.FACT  # "and the second?", "tell me more" ask about those papers, however short
    elif kind == Kind.CHITCHAT and (pred.confidence < MIN_CONFIDENCE or named):
        kind = Kind.LIST  # small talk only when the model is sure: a doubtful one searches its words
    elif kind == Kind.LIMITS and pred.confidence < MIN_CONFIDENCE:
        # A limits answer keeps only the papers that state a limitation: when the model is not
        # sure weaknesses are asked for, every paper on the topic is answered, as an overview.
        kind = Kind.OVERVIEW
    elif kind == Kind.SUPERLATIVE and pred.confidence < MIN_CONFIDENCE and numbers.metric_in(question) is None:
        # Numbers are compared across papers by the measure asked for: with none named and the
        # model unsure, "which application do they argue benefits most" asks a fact of a paper.
        kind = max((Kind.FACT, Kind.HOW, Kind.ORIGIN), key=lambda k: pred.probabilities.get(k, 0.0))
    if kind in (Kind.FACT, Kind.HOW) and (len({pid for m in identifying for pid in m.paper_ids}) >= 2
                                          or (follow_up and len(positions) >= 2)):
        # The same asked of two identified papers, by name or by position in the conversation
        # ("How does the first compare with the second?"): answered side by side.
        kind = Kind.COMPARE
    if follow_up and restrict and not conversation.names_earlier_topic(question) and not swapped:
        # Restricted to papers already judged relevant: a list when the new question keeps several.
        more = conversation.asks_for_more(question)
        # Papers picked by position ("the first three") or asked about as "they" are each answered.
        each = more or len(positions) > 1 or (not positions and conversation.asks_about_each(question))
        searched = model.topic(_without_pointers(question))  # "which of those" names no topic
        return Query(question, question, searched, kind, True, tuple(restrict), named,
                     limit=requested_count(question), shown=turn.answer if more else "", each=each,
                     confidence=pred.confidence)
    # A follow-up that is not restricted (the earlier answer cited nothing, or it asks anew about
    # the earlier topic) is searched with the earlier question; its pointers name no topic.
    text = f"{turn.question} {_without_pointers(question)}" if follow_up and turn.question else question
    titled = tuple(dict.fromkeys(pid for m in identifying for pid in m.paper_ids)) \
        if kind in (*_SINGLE_WHEN_NAMED, Kind.COMPARE) else ()
    return Query(question, text, model.topic(text), kind, follow_up, None, named, titled,
                 limit=requested_count(question), confidence=pred.confidence)
