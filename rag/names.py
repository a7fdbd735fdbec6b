"""Which papers a question names: by full title, by short name, or by a method name.

People name papers three ways, and this module is the one place that knows them:
- the full title, usually quoted or pasted ("Representation Learning by Context Prediction");
- a short name, the head of the title: the part before its colon ("ConViT" of "ConViT:
  Improving Vision Transformers ..."), or, for a title without a colon, the words before its
  first linking word ("Prototypical Networks" of "Prototypical Networks for Few-shot Learning");
- a method name the title carries or the abstract defines ("dubbed ConvNeXt", "(OSNet)").

Mentions can overlap: a full title may contain another paper's short name. The longest
mention wins, so a quoted full title is never read as the shorter name inside it. Names are
matched as whole words, case-insensitively. Nothing here searches or ranks: `NameIndex` is a
lookup table built from a set of paper records; `CorpusNames` applies the same rules to a
whole corpus of any size, taking the candidate papers for each question from the lexical
index's name fields (`rag.lexical`) and counting "how many papers use this name" there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rag.models import Paper
from rag.spelling import english  # its dictionary loads on first use (the pipeline's speller loads it)
from rag.text import words

# Heads that name no paper: "Rethinking: ..." or "Towards ...".
_COMMON_HEADS = {"rethinking", "revisiting", "towards", "toward", "survey", "review", "introduction", "overview",
                 "a survey", "an overview", "a review", "deep learning", "machine learning", "neural networks"}
_NOT_NAME_STARTS = {"a", "an", "the", "on", "towards", "toward", "beyond", "about", "is", "are", "do", "does", "how",
                    "what", "why", "when", "can"}
# Where a title without a colon turns from what it names to what it is for or about.
_LINK = re.compile(r"\s+(?:for|with|via|using|through|by|from|in|on|of|to|towards|as|and|under|without)\s+", re.I)
# Method-name-like tokens: an inner capital (ConvNeXt, SparK, OSNet) or letters with digits.
# Never the tail of a hyphenated word: "G-SimCLR" names a variant, not SimCLR, and
# "Inception-ResNet" is not ResNet (read as tails, "SimCLR" in a question named G-SimCLR).
_NAME_TOKEN = re.compile(r"(?<!\w-)\b(?=[\w-]*[a-z])(?:[A-Za-z]+[A-Z][\w-]*|[A-Za-z]+-?\d[\w-]*)\b")
# Where an abstract defines a name: "dubbed ConvNeXt", "termed CDD-RED", "network (OSNet)".
_DEFINED = re.compile(r"\b(?:dubbed|named|called|termed|coined|namely)\s+([A-Z][\w-]+)|\(([A-Za-z][\w-]*[A-Z][\w-]*)\)")
MAX_PAPERS_PER_NAME = 2  # a name more papers share names none of them


def _word_name(head: str) -> bool:
    """A paper's short name that is also an English word, written as a name ("GIST", "POINTS",
    "FILM", "Twins"; not "HorNet" or "LeViT", whose inner capitals coin them)."""
    return head.isalpha() and (head.isupper() or head[1:].islower()) and english()(head.lower())


def _as_name(written: str) -> bool:
    """Whether a question writes a word-like short name as a name, with a capital: "the GIST
    paper", "Twins", not "give me the gist of ...", "by how many points"."""
    return written != written.lower()


def short_name(title: str) -> str:
    """The head the authors gave a title, before its colon, or "" when it has none.

    `short_name("ConViT: Improving Vision Transformers with Soft Biases")` -> "ConViT";
    `short_name("Rethinking: Something")` -> "" (a common word names nothing).
    A long head ("Attention is All You Need? Good Embeddings with Statistics are enough") is
    kept: the longer a phrase, the less it can match by accident.
    """
    head, sep, _ = title.partition(":")
    head = head.strip()
    if not sep or len(head) < 3 or head.islower() or head.casefold() in _COMMON_HEADS:
        return ""
    return head


def title_head(title: str) -> str:
    """How a title without a colon is usually shortened: the words before its first linking
    word, when they look like a name; "" otherwise (and for titles with a colon).

    `title_head("Prototypical Networks for Few-shot Learning")` -> "Prototypical Networks";
    `title_head("A Tour of Convolutional Networks")` -> "" (a description, not a name).
    """
    parts = _LINK.split(title, maxsplit=1)
    if ":" in title or len(parts) < 2:
        return ""
    head = parts[0].strip()
    # The head must itself look like a name: two or more words that are not all lower-case
    # ("Prototypical Networks"), or a method-like token ("CvT").
    if len(head.split()) < 2 and not _NAME_TOKEN.fullmatch(head):
        return ""
    if head.split()[0].casefold() in _NOT_NAME_STARTS or len(head.split()) > 6:
        return ""
    if len(head) < 3 or head.islower() or head.casefold() in _COMMON_HEADS:
        return ""
    return head


def _coined_look(name: str) -> bool:
    """Whether a name has what ordinary words lack: a capital inside a word or a digit.

    `_coined_look("Grad-CAM")`, `_coined_look("ConViT")`, `_coined_look("YOLOv3")` -> True;
    `_coined_look("Knowledge distillation")`, `_coined_look("Prototypical Networks")` -> False.
    """
    return any(c.isdigit() for c in name) or any(c.isupper() for w in re.split(r"[\s-]+", name) for c in w[1:])


def display_name(title: str) -> str:
    """What an answer calls a paper: its short name when that is short, else the title."""
    head = short_name(title)
    return head if head and len(head) <= 40 and len(head.split()) <= 4 else title


def find_word(haystack: str, needle: str, start: int = 0) -> int:
    """Position of `needle` in `haystack` as a whole word (both lower-cased), else -1.

    `find_word("is cvt fast?", "cvt")` -> 3; `find_word("cvts", "cvt")` -> -1.
    """
    while (pos := haystack.find(needle, start)) >= 0:
        before = haystack[pos - 1] if pos else " "
        after = haystack[pos + len(needle)] if pos + len(needle) < len(haystack) else " "
        if not before.isalnum() and not after.isalnum():
            return pos
        start = pos + 1
    return -1


@dataclass(frozen=True)
class Mention:
    """A name found in a question: where, how strongly it identifies papers, and which."""

    start: int
    end: int
    paper_ids: tuple[str, ...]
    strong: bool  # a title or short name (True), or only a method name (False)
    coined: bool = False  # a method name its papers coin ("dubbed X"), not only cite


def resolve(mentions: Iterable[Mention]) -> list[Mention]:
    """Non-overlapping mentions in question order; of two that overlap, the longer wins (a
    quoted full title over a short name inside it), then the stronger.

    `resolve([Mention(0, 40, ("a",), True), Mention(10, 24, ("b",), True)])` -> the first only.
    """
    kept: list[Mention] = []
    for m in sorted(mentions, key=lambda m: (-(m.end - m.start), not m.strong, m.start)):
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


def name_keys(title: str) -> list[str]:
    """The normalised names a title can be asked by (full title, short name, title head):
    what the lexical index's name lookup matches, before the rules here verify a match.

    `name_keys("ConViT: Improving Vision Transformers")` -> `["convit improving vision transformers", "convit"]`
    """

    keys = [" ".join(words(name)) for name in (title, short_name(title), title_head(title)) if name]
    return [k for k in dict.fromkeys(keys) if k]


def method_tokens(paper: Paper, coined_only: bool = False) -> list[str]:
    """The method-name-like tokens a paper carries in its title or defines in its abstract,
    case-folded: `method_tokens(<"CvT: ...", "... dubbed CvT">)` -> `["cvt"]`. `coined_only`:
    only those the abstract introduces with a verb ("dubbed ConvNeXt"); a name in parentheses
    is as often another paper's ("... than ResNet (ConvNeXt)"), and a title's can be a
    dataset's ("Toward Errorless Training ImageNet-1k")."""
    every, coined = _method_tokens(paper)
    return coined if coined_only else every


def _method_tokens(paper: Paper) -> tuple[list[str], list[str]]:
    """`method_tokens(paper)` and `method_tokens(paper, coined_only=True)` from one scan."""
    defined = _DEFINED.findall(paper.abstract)

    def folded(tokens) -> list[str]:
        return sorted({t.casefold() for t in tokens if t and _NAME_TOKEN.fullmatch(t)})

    every = folded({a or b for a, b in defined}) + [t.casefold() for t in _NAME_TOKEN.findall(paper.title)]
    return sorted(set(every)), folded({a for a, _ in defined})


class NameIndex:
    """Lower-cased names -> paper ids for one set of papers; `find(question)` names papers.

    How many papers share a method name or use a title head as a phrase is counted over
    `papers`, unless `method_count` / `phrase_count` count it over a larger corpus (the
    lexical index, `CorpusNames`, which hands in only the candidate papers)."""

    def __init__(self, papers: dict[str, Paper], method_count: Callable[[str], int] | None = None,
                 phrase_count: Callable[[str], int] | None = None):
        self.titles: dict[str, list[str]] = {}  # full title -> ids (two versions share a title)
        self.strong: dict[str, list[str]] = {}  # full titles and short names
        self.short: dict[str, list[str]] = {}  # every short name, for reading answers back (`by_title`)
        self.word_names: set[str] = set()  # short names that are English words ("GIST", "Twins"): `_as_name`
        where: dict[str, list[str]] = {}
        coined: dict[str, list[str]] = {}
        heads: dict[str, list[str]] = {}
        for pid, paper in papers.items():
            title = paper.title.casefold()
            self.titles.setdefault(title, []).append(pid)
            self.strong.setdefault(title, []).append(pid)
            if head := short_name(paper.title):
                self.short.setdefault(head.casefold(), []).append(pid)
                if _word_name(head):
                    self.word_names.add(head.casefold())
                # "ConViT", "Grad-CAM", "Attention is All You Need?" name a paper; a head of
                # ordinary words ("Knowledge distillation: A good teacher ...") may be a topic.
                (self.strong if _coined_look(head) else heads).setdefault(head.casefold(), []).append(pid)
            elif head := title_head(paper.title):
                heads.setdefault(head.casefold(), []).append(pid)
            every, coins = _method_tokens(paper)
            for token in every:
                where.setdefault(token, []).append(pid)
            for token in coins:
                coined.setdefault(token, []).append(pid)
        self.methods = {t: pids for t, pids in where.items()
                        if (method_count(t) if method_count else len(pids)) <= MAX_PAPERS_PER_NAME}
        # A name one paper coins and another only cites names the first: "Does ConvNeXt use
        # attention?" asks about "A ConvNet for the 2020s" ("dubbed ConvNeXt"), not about a
        # paper that lists ConvNeXt among its backbones.
        self.coined = {t: [pid for pid in pids if pid in coined[t]] for t, pids in self.methods.items()
                       if any(pid in coined.get(t, ()) for pid in pids)}
        # A head of ordinary words, before a colon or cut from a title without one ("Prototypical
        # Networks"), is a name only where the corpus uses the phrase rarely: "Convolutional
        # Neural Networks" heads titles too, and "Knowledge distillation: ..." names a topic
        # that many abstracts share ("what do the papers say about knowledge distillation?").
        if phrase_count is None:
            texts = [f"{p.title} {p.abstract}".casefold() for p in papers.values()] if heads else []

            def phrase_count(head: str) -> int:
                return sum(find_word(t, head) >= 0 for t in texts)

        for head, pids in heads.items():
            if phrase_count(head) > MAX_PAPERS_PER_NAME:
                continue
            for pid in pids:
                self.strong.setdefault(head, []).append(pid)

    def by_title(self, title: str) -> list[str]:
        """Ids of the papers with this exact title (case-insensitive), or, failing that, this
        short name: how an answer's reference lines and bold names are read back."""
        key = " ".join(title.split()).casefold()
        return self.titles.get(key) or self.strong.get(key) or self.short.get(key, [])

    def mentions(self, question: str, strong_only: bool = False) -> list[Mention]:
        """Every name in `question`, overlaps resolved (see `resolve`)."""
        low = question.casefold()
        found: list[Mention] = []
        for name, pids in self.strong.items():
            pos = find_word(low, name)
            while pos >= 0:
                if name not in self.word_names or _as_name(question[pos:pos + len(name)]):
                    found.append(Mention(pos, pos + len(name), tuple(pids), True))
                pos = find_word(low, name, pos + 1)
        if not strong_only:
            for token in set(_NAME_TOKEN.findall(question)):
                key = token.casefold()
                pids = self.coined.get(key) or self.methods.get(key)
                pos = find_word(low, key) if pids else -1
                if pos >= 0:
                    found.append(Mention(pos, pos + len(token), tuple(pids), False, key in self.coined))
        return resolve(found)

    def find(self, question: str, strong_only: bool = False) -> list[str]:
        """Ids of the papers `question` names, in the order the names appear, each once.
        `strong_only`: by title or short name only, not by a method name."""
        out: list[str] = []
        for m in self.mentions(question, strong_only):
            out += [pid for pid in m.paper_ids if pid not in out]
        return out


class CorpusNames:
    """`NameIndex`'s lookups over a whole corpus without holding its titles: the lexical
    index's name fields give the candidate papers for a question (every run of its words
    that is some paper's normalised title, short name or title head, and its method-like
    tokens), their records are fetched, and a `NameIndex` over just those candidates, with
    the corpus-wide counts, applies the rules above. Cost per question: two term-set lookups
    and a fetch of a few paper records, at any corpus size."""

    MAX_WORDS = 40  # longest title run looked up

    def __init__(self, lexical, get_papers: Callable[[list[str]], Mapping[str, Paper]]):

        self._words = words
        self.lexical = lexical
        self.get_papers = get_papers

    def _index(self, keys: set[str], methods: set[str]) -> NameIndex:
        ids = self.lexical.papers_with_keys(keys) + self.lexical.papers_with_keys(methods, field="method")
        papers = self.get_papers(sorted(set(ids)))
        return NameIndex(dict(papers), method_count=lambda t: self.lexical.count_papers("method", t),
                         phrase_count=lambda head: self.lexical.count_papers("words", self._words(head)))

    def _for(self, text: str, strong_only: bool = False) -> NameIndex:
        toks = self._words(text)
        keys = {" ".join(toks[i:j]) for i in range(len(toks))
                for j in range(i + 1, min(len(toks), i + self.MAX_WORDS) + 1)}
        methods = set() if strong_only else {t.casefold() for t in _NAME_TOKEN.findall(text)}
        return self._index(keys, methods)

    def by_title(self, title: str) -> list[str]:
        """As `NameIndex.by_title`."""
        return self._index({" ".join(self._words(title))}, set()).by_title(title)

    def mentions(self, question: str, strong_only: bool = False) -> list[Mention]:
        """As `NameIndex.mentions`."""
        return self._for(question, strong_only).mentions(question, strong_only)

    def find(self, question: str, strong_only: bool = False) -> list[str]:
        """As `NameIndex.find`."""
        return self._for(question, strong_only).find(question, strong_only)
