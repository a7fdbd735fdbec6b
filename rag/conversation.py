"""What a question takes from the conversation before it.

A follow-up leans on the previous answer: it points back ("which of those", "the second one",
"how does it ..."), leaves out its own subject ("Which use ...?", "Any that ...?") or asks for
more ("tell me more"). This module reads chat history (OpenAI/Gradio-style messages) and tells
those questions apart; `rag.questions.analyse` turns what it finds into a `Query`.

- `previous_turns` / `previous_turn` recover each earlier question and the papers its answer
  cited: from a `citations` field on the assistant message when there is one, else from the
  answer's own text (reference lines or bold names);
- `listing_turn` finds the earlier list that "the third" points at, `ordinals` the positions;
- `points_back`, `asks_for_more`, `asks_about_each`, `names_earlier_topic` and `only_names`
  read the question itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.text import NUMBER_WORDS, unescape_md

Message = dict  # {"role": "user" | "assistant", "content": str, "citations"?: [{"paper_id": ...}]}

# "it" points back ("how does it compare to MoCo?") unless it is the empty subject of "is it
# possible to ...", "it is known that ..."; so does "this" ("papers on this", "this method"),
# except "this corpus".
_EMPTY_IT = r"(?:possible|true|known|necessary|hard|difficult|easy|feasible|common|important|worth|unclear|clear)"
_ANAPHORA = re.compile(
    rf"\bit(?!(?:'s|\s+is|\s+was)?\s+{_EMPTY_IT}\b)\b|\bthis\b(?!\s+(?:corpus|collection)\b)|"
    r"\b(those|these|them|they|their|its|this one|that one|"
    r"the (first|second|third|fourth|fifth|last|former|latter|above)( one| paper)?|"
    r"of the above|the same|previous|mentioned|which of|the ones|which ones?(?!-))\b"
    r"|^\s*(and|what about|how about|only)\b", re.I)
# A question whose subject is left out stands on the previous answer's papers: "Which use a
# transformer teacher?", "Do any report results on ImageNet?", "Any that are self-supervised?".
# "which" or "do any" followed straight by a verb has no noun of its own to ask about ("Which
# papers use ...", "Do any papers ..." have one and are new questions). Verbs papers are asked
# about, each also with -s / -d / -ed; not "work" or "study", whose plurals are nouns for papers.
_VERB = (r"(?:use|rely|relie|report|propose|apply|applie|achieve|outperform|train|evaluate|test|need|"
         r"require|handle|support|combine|introduce|employ|leverage|adopt|include|involve|target|reach|"
         r"focus|address|tackle|mention|discuss|beat|perform|exploit|predict|generate|detect|measure|"
         r"release|provide|show|claim|scale|run|compare|learn|get|give|reduce|improve|add|extend|"
         r"build)(?:s|es|d|ed)?")
_ELLIPSIS = re.compile(
    rf"^\W*(?:and\s+)?(?:which\s+(?:(?:also|still|both)\s+)?{_VERB}"
    rf"|(?:do|does|did|can|could|will|would)\s+any\s+(?:(?:also|still)\s+)?{_VERB}"
    rf"|any\s+(?:that|which|who)|which\s+(?:is|are)\s+(?:better|best|faster|fastest|more|most|less|least))\b",
    re.I)
# A follow-up that asks about each earlier paper ("What did they find?", "How do they evaluate
# their models?") rather than choosing among them ("Which of those ...", "Any that ...", "Only
# the ones ...", "What about those for ...").
_EACH = re.compile(r"\b(?:they|them|their|these|those|each(?:\s+of\s+them)?|all\s+of\s+them|both)\b", re.I)
_CHOOSING = re.compile(
    r"^\W*(?:and\s+)?(?:which|any|(?:do|does|did|are|is|were)\s+any|only|how\s+many|what\s+about|how\s+about|"
    r"the\s+ones|ones)\b", re.I)
# A new request for papers whose "it" is the earlier question's topic: "Which papers use it?"
# after "What is masked image modeling?" asks for masked-image-modeling papers, not for the
# one paper that answer cited. A plural pointer ("those", "them") means the earlier papers.
_NEW_REQUEST = re.compile(
    r"^\W*(?:which|what|are\s+there|is\s+there|do\s+any|does\s+any|list|find|show\s+me|give\s+me|how\s+many)"
    r"\s+(?:any\s+)?(?:other\s+|more\s+)?(?:papers|works|studies|articles)\b", re.I)
_SINGULAR_IT = re.compile(r"\b(?:it|its|this|that)\b", re.I)
_PLURAL_POINTER = re.compile(r"\b(?:those|these|them|they|their|of\s+the\s+above|the\s+ones|the\s+same)\b", re.I)
# A request for more of the previous answer: "tell me more", "go on", "more details please".
_MORE = re.compile(
    r"^\W*(?:(?:(?:please|can\s+you|could\s+you)\s+)?(?:tell|show|give)\s+me\s+more"
    r"(?:\s+(?:about\s+(?:it|this|that|them|those|these)|details?))?"
    r"|more(?:\s+(?:details?|info|information))?|go\s+on|elaborate|continue|keep\s+going|explain\s+(?:further|more))"
    r"(?:\s+please)?\W*$", re.I)


ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_FIRST_N = re.compile(r"\bthe (first|last) (two|three|four|five|[2-9])\b", re.I)
_ORDINAL = re.compile(r"\bthe (first|second|third|fourth|fifth|last)( one| paper)?\b", re.I)
_REF_LINE = re.compile(r"^\s*\[(\d+)\]\s+(.+?)\s*$", re.M)
# How an answer's text names the papers it cites: "**Title** [n]" (lists, comparisons) and
# "(From **Title** [n].)" (facts). Read back when history holds only the answer's text.
_BOLD_CITED = re.compile(r"\*\*(.+?)\*\*\s*\[(\d+)\]")


def points_back(question: str, turn: Turn) -> bool:
    """There is a previous answer and the question points back at it ("which of those"), or
    leaves out its subject ("which use ...")."""
    return bool(turn.question) and bool(_ANAPHORA.search(question) or _ELLIPSIS.match(question)
                                        or _MORE.match(question))


def without_pointers(question: str) -> str:
    """The question without the words that point back at the conversation, which name no topic
    of their own: `without_pointers("Which of those use ImageNet?")` -> "  use ImageNet?"."""
    return _ANAPHORA.sub(" ", question)


def ordinals(question: str) -> list[int]:
    """The earlier answer's papers a question picks by position, in its order: none unless it
    says "the first", "the second one", ... ; then every position word it holds.
    `ordinals("What dataset does the second one use?")` -> [2];
    `ordinals("How does the first compare with the last?")` -> [1, -1]; "the first and second" -> [1, 2];
    "compare the first two" -> [1, 2]; "the last two" -> [-2, -1]."""
    if not _ORDINAL.search(question):
        return []
    if run := _FIRST_N.search(question):  # "the first two", "the last three"
        n = NUMBER_WORDS.get(run.group(2).lower()) or int(run.group(2))
        return list(range(1, n + 1)) if run.group(1).lower() == "first" else list(range(-n, 0))
    words = re.findall(r"\b(first|second|third|fourth|fifth|last)\b", question.lower())
    return list(dict.fromkeys(-1 if w == "last" else ORDINALS[w] for w in words))


@dataclass(frozen=True)
class Turn:
    """The previous exchange: the user's question, and the papers the answer cited, in marker
    order, as paper ids (`cited_ids`, from structured history) or as titles (`cited_titles`,
    read back from the answer's text)."""

    question: str = ""
    cited_ids: tuple[str, ...] = ()
    cited_titles: tuple[str, ...] = ()
    answer: str = ""  # the answer's text


def _cited_ids(citations: object) -> tuple[str, ...]:
    """Paper ids from an assistant message's `citations`: dicts with a `paper_id` (as
    `Answer.as_message` writes them, sorted by `n` when present) or plain id strings."""
    if not isinstance(citations, list):
        return ()
    items = [c for c in citations if isinstance(c, (dict, str))]
    items.sort(key=lambda c: c.get("n", 0) if isinstance(c, dict) and isinstance(c.get("n"), int) else 0)
    ids = [c.get("paper_id") if isinstance(c, dict) else c for c in items]
    return tuple(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def cited_titles(content: str) -> tuple[str, ...]:
    """Titles an answer's text cites, in marker order: its `[n] Title` reference lines (as
    `rag.render.to_markdown` writes them), else the bold names next to its markers.

    `cited_titles("1. **CvT** [1]: ...\\n2. **ViT** [2]: ...")` -> ("CvT", "ViT")
    """
    found = _REF_LINE.findall(content) or [(n, t) for t, n in _BOLD_CITED.findall(content)]
    ordered = sorted(found, key=lambda x: int(x[0]))
    return tuple(dict.fromkeys(unescape_md(t.strip("*_ ")) for _, t in ordered))


def previous_turns(history: list[Message] | None) -> Iterator[Turn]:
    """The earlier exchanges, newest first: each user question with what the assistant's answer
    after it cited."""
    if not isinstance(history, list):
        return  # None, or something that is not a message list
    ids: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    answer = ""
    answered = False
    for msg in reversed(history):
        if not isinstance(msg, dict):
            continue
        role, content = msg.get("role"), msg.get("content")
        if not isinstance(content, str):
            continue
        if role == "assistant" and not answered:
            ids = _cited_ids(msg.get("citations"))
            titles = () if ids else cited_titles(content)
            answer, answered = content, True
        elif role == "user":
            yield Turn(content, ids, titles, answer)
            ids, titles, answer, answered = (), (), "", False


def previous_turn(history: list[Message] | None) -> Turn:
    """The last user question and what the assistant's answer after it cited."""
    return next(previous_turns(history), Turn())


def listing_turn(history: list[Message] | None, positions: list[int]) -> Turn:
    """The exchange whose answer a question picking papers by position points at: the newest
    that cited enough papers. After a list and then "summarise the first one", "and the
    third?" means the list's third paper, not a third paper of the one-paper summary.
    `positions` as `ordinals` gives them ("the last" needs a list of two or more); the newest
    exchange when none cited enough."""
    turns = list(previous_turns(history))
    needed = max([n if n > 0 else max(2, -n) for n in positions] + [1])
    listing = [t for t in turns if len(t.cited_ids or t.cited_titles) >= needed]
    return (listing or turns or [Turn()])[0]


def asks_for_more(question: str) -> bool:
    """"tell me more", "go on", "more details please": more of the previous answer."""
    return bool(_MORE.match(question))


def asks_about_each(question: str) -> bool:
    """A follow-up about every earlier paper ("What did they find?") rather than one that
    chooses among them ("Which of those ...", "Any that ...", "What about those for ...")."""
    return bool(_EACH.search(question)) and not _CHOOSING.match(question)


def names_earlier_topic(question: str) -> bool:
    """A new request for papers that points back with "it": at the earlier question's topic,
    searched again with this question, not restricted to the earlier answer's papers.
    `names_earlier_topic("Which papers use it?")` -> True; "Which of those use it?" -> False."""
    return (bool(_NEW_REQUEST.match(question)) and bool(_SINGULAR_IT.search(question))
            and not _PLURAL_POINTER.search(question) and not ordinals(question))


_SWAP = re.compile(r"^\W*(?:and|what\s+about|how\s+about)\s+(?:the\s+)?", re.I)


def only_names(question: str, start: int, end: int) -> bool:
    """Whether the name at `question[start:end]` is all a pointing-back question says: "And
    ConViT?" after "What does CvT propose?" asks the same of another paper, which is then no
    follow-up restricted to CvT. `only_names("And ConViT?", 4, 10)` -> True."""
    lead = _SWAP.match(question)
    return bool(lead) and lead.end() == start and not question[end:].strip(" ?!.")
