"""What a question asks: checks, its kind, the papers it names, and what it leans on.

`analyse(question, history, names)` turns a raw question into a typed `Query`: the text as
asked and as searched, its kind (list / compare / fact), whether it is a follow-up, the
papers it is restricted to (a follow-up's previous answer), and the papers it names. No
retrieval happens here; `rag.names` supplies the name lookup.

- `check_question` refuses input no search can use, with a specific message;
- `question_kind` tells a list question from a comparison or a fact;
- `search_text` strips the asking-for-papers scaffolding, `requested_count` reads "give me 3
  papers", `small_talk` spots a message that asks nothing;
- `rag.conversation` says what a question takes from the conversation before it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag import conversation
from rag.conversation import Message
from rag.errors import QuestionError
from rag.names import NameIndex
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


# How people ask for papers, as opposed to what about: "Which papers ...", "Are there any
# studies on ...", "List papers that ...", "Which of those ...", "... in the corpus". It names
# no topic, and in a sentence embedding it pulls every question towards every "we propose"
# abstract, so search embeds the rest (measured in README, "Answer quality").
_DOC = r"(?:papers?|articles?|works?|studies|publications?|abstracts?|research)"
# How many papers a request asks for: "Give me 3 papers on pruning", "the top five works ...".
_COUNT = rf"(?:top\s+)?(\d{{1,3}}|{'|'.join(NUMBER_WORDS)})\s+(?:(?:more|other|good|relevant|key|main|best)\s+)?"
_COUNTED = re.compile(rf"\b{_COUNT}{_DOC}\b", re.I)
_SCAFFOLD = re.compile(
    rf"""^\s*(?:
        (?:which|what)\s+(?:of\s+the\s+)?(?:{_COUNT})?{_DOC}
      | (?:and\s+)?(?:which|what)\s+of\s+(?:those|these|them|the\s+above)(?:\s+{_DOC})?
      | (?:are|is)\s+there\s+(?:any\s+)?{_DOC}
      | how\s+many\s+{_DOC}(?:\s+(?:are|is|do|does))?
      | (?:do|does)\s+any\s+{_DOC}
      | (?:can\s+you\s+|could\s+you\s+|please\s+)?(?:find|list|show|give|name|recommend|suggest|search\s+for|look\s+for)
        (?:\s+me)?\s+(?:all\s+|any\s+|some\s+|the\s+)?(?:{_COUNT})?{_DOC}
      | (?:the\s+)?(?:{_COUNT})?{_DOC}
    )(?:\s+(?:in|from)\s+(?:the|this|our|my)\s+(?:corpus|collection))?
     (?:\s+(?:that|which|who|where))?\b""", re.I | re.X)
# A greeting before the question ("hello, which papers study GANs?") names no topic: searched,
# "hello" is a word no abstract holds, and the abstention model read it as an uncovered topic.
_HELLO = r"(?:hi|hello|hey|good\s+(?:morning|afternoon|evening))"
_THANKS = r"(?:thanks?|thank\s+you)"
_GREETING = re.compile(rf"^\W*(?:{_HELLO}|{_THANKS})\b[\s,!.;:-]*", re.I)
_IN_CORPUS = re.compile(r"\s+(?:in|from)\s+(?:the|this|our|my)\s+(?:corpus|collection)\b", re.I)


def requested_count(question: str) -> int | None:
    """How many papers the question asks for, when it says: `requested_count("Give me 3 papers
    on pruning")` -> 3, "the top five works on GANs" -> 5; "Which papers use ResNet-50?" -> None."""
    found = _COUNTED.search(question)
    if not found:
        return None
    word = found.group(1).lower()
    count = int(word) if word.isdigit() else NUMBER_WORDS[word]
    return count if count > 0 else None


def search_text(question: str) -> str:
    """What to search for: the question without the asking-for-papers scaffolding.

    `search_text("Which papers in the corpus use graph networks?")` -> "use graph networks?";
    "Hello, which papers study GANs?" -> "study GANs?"; a question that is only scaffolding
    ("Which papers?") is returned unchanged.
    """
    asked = _GREETING.sub("", question, count=1)
    rest = _IN_CORPUS.sub("", _SCAFFOLD.sub("", asked, count=1)).strip(" ,:;-")
    return rest if any(c.isalnum() for c in rest) else question


# Plural "papers", "methods", ...: a singular one after "what" is a particular paper ("What does
# the paper '...' propose?", "What model does CvT use?"), a fact question; "which paper" asks
# which ones.
_LIST = re.compile(r"^\s*(which|what|how many|list|name|find|show|give)\b.{0,40}"
                   r"\b(papers|works|studies|articles|approaches|methods|models)\b"
                   r"|^\s*which\s+(paper|work|study|article|approach|method|model)\b"
                   r"|^\s*(are there|is there|do any|does any)\b.{0,30}\b(papers?|works?|studies)\b", re.I)
# One paper asked for ("Which paper introduced ...?"): when the question names a paper by its
# title or short name, that paper is the answer, not the first of a list.
_ONE_PAPER = re.compile(r"^\W*which\s+(?:paper|work|study|article|publication)\b", re.I)
# Words that set two named papers against each other: "how is X different from Y", "is X better
# than Y", "X compared to Y", "what do X and Y have in common".
_COMPARE = re.compile(r"\b(compar(?:e|es|ed|ing|ison)|contrast|differ|differs|different|differences?|"
                      r"distinguish(?:es)?|versus|vs\.?|both|than|outperforms?|similar|similarities|in common)\b",
                      re.I)


_JOINED = re.compile(r"^[\W_]*(?:and|or)[\W_]*$", re.I)  # between two names: "X and Y", "'X' or 'Y'"
# How a sentence that asks or tells opens; text that opens otherwise, has no "?" and names no
# paper is typed the way a search box is ("graph neural networks", "self-supervised depth").
_SENTENCE_START = re.compile(
    r"^\W*(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|should|"
    r"would|will|has|have|had|tell|explain|describe|summari[sz]e|define|compare|give|list|show|find|name|"
    r"i|i'm|we|my|our|please|hi|hello|thanks?)\b", re.I)


def question_kind(question: str, named: int = 0, between: list[str] | None = None, follow_up: bool = False) -> str:
    """"list", "compare" or "fact". `named` is how many papers the question names, `between`
    the text between consecutive names when known: two names joined by "and" ask to compare,
    an "and" elsewhere ("pre-trained and fine-tuned ... SimMIM") does not. A question that
    opens with the asking-for-papers scaffolding `search_text` strips is a list.

    `question_kind("Which papers bridge CNNs and ViTs?")` -> "list";
    `question_kind("How do ConViT and CvT differ?", named=2)` -> "compare";
    `question_kind("ViT-B pre-trained and fine-tuned: what does SimMIM reach?", 2, [" pre-trained ... what does "])`
    -> "fact". A bare topic typed as into a search box (not a follow-up) asks for papers:
    `question_kind("graph neural networks")` -> "list"; `question_kind("ConvNeXt accuracy", named=1)` -> "fact".
    """
    if named >= 2:
        joined = any(_JOINED.match(gap) for gap in between) if between is not None \
            else bool(re.search(r"\s(?:and|or)\s", question, re.I))
        if _COMPARE.search(question) or joined:
            return "compare"
    if _LIST.search(question) or _SCAFFOLD.match(question):
        return "list"
    if not (named or follow_up) and "?" not in question and not question.rstrip().endswith(".") \
            and not _SENTENCE_START.match(question):
        return "list"
    return "fact"


# A message that asks nothing about papers: thanks, greetings, acknowledgements.
_SMALL_TALK = re.compile(
    rf"^\W*(?:(?:{_THANKS}|thx|ty|cheers)(?:\s+(?:so\s+much|a\s+lot|very\s+much))?|{_HELLO}|"
    r"ok(?:ay)?|great|cool|nice|perfect|got\s+it|bye|goodbye)"
    rf"(?:[\s,!.]+(?:{_THANKS}|bye))?\W*$", re.I)


def small_talk(question: str) -> bool:
    """Whether a message asks nothing about papers: `small_talk("Thanks!")` -> True,
    `small_talk("Thanks to whom is SimCLR faster?")` -> False."""
    return bool(_SMALL_TALK.match(question))


@dataclass(frozen=True)
class Query:
    """A question as the pipeline works with it.

    `text` is what evidence is judged against: the question, or for a follow-up that is not
    restricted to earlier papers, the previous question and this one together; `searched` is
    `text` without the asking-for-papers scaffolding. `restrict` (paper ids) limits a
    follow-up to the papers the previous answer cited; `named` are the papers the question
    names (any name), `titled` those it names by title, short name or a method name its paper
    coins (fact and compare questions)."""

    asked: str
    text: str
    searched: str
    kind: str
    follow_up: bool = False
    restrict: tuple[str, ...] | None = None
    named: tuple[str, ...] = ()
    titled: tuple[str, ...] = ()
    limit: int | None = None  # the number of papers asked for ("Give me 3 papers ..."), when said
    shown: str = ""  # for "tell me more": the previous answer's text, whose sentences are not repeated
    each: bool = False  # a follow-up about each earlier paper ("What did they find?"): all of them answer


def analyse(question: str, history: list[Message] | None, names: NameIndex,
            follow_up: bool | None = None) -> Query:
    """The typed `Query` for a checked question; `follow_up` forces or forbids follow-up
    handling (None: decided from the question and history)."""
    question = _GREETING.sub("", question, count=1) or question  # "Hello, which papers ..." asks "which papers ..."
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
    between = [question[a.end:b.start] for a, b in zip(mentions, mentions[1:])]
    kind = question_kind(question, named=len(named), between=between, follow_up=follow_up)
    if follow_up and len(restrict) >= 2 and positions and kind == "fact":
        # "How does the first compare with the second?": earlier papers picked by position.
        kind = question_kind(question, named=2)
    # Names that identify their paper: a title, a short name, or a method name its paper coins.
    identifying = [m for m in mentions if m.strong or m.coined]
    swapped = any(not set(m.paper_ids) & set(restrict)
                  for m in identifying if conversation.only_names(question, m.start, m.end))
    if follow_up and restrict and not conversation.names_earlier_topic(question) and not swapped:
        # Restricted to papers already judged relevant: a list when the new question keeps several.
        more = conversation.asks_for_more(question)
        # Papers picked by position ("the first three") or asked about as "they" are each answered.
        each = more or len(positions) > 1 or (not positions and conversation.asks_about_each(question))
        return Query(question, question, search_text(question), kind, True, tuple(restrict), named,
                     limit=requested_count(question), shown=turn.answer if more else "", each=each)
    text = f"{turn.question} {question}" if follow_up and turn.question else question
    if kind == "list" and _ONE_PAPER.match(question) and identifying:
        kind = "fact"  # "Which paper introduced LoFTR?": the paper named "LoFTR" is the answer
    # A paper so named is the one asked about.
    titled = tuple(dict.fromkeys(pid for m in identifying for pid in m.paper_ids)) \
        if kind in ("fact", "compare") else ()
    return Query(question, text, search_text(text), kind, follow_up, None, named, titled,
                 limit=requested_count(question))
