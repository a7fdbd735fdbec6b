"""Pure text helpers shared by BM25, sentence selection and the support check.

One analyser (lower-case, English stop words out, Snowball stems) everywhere, so "what BM25
matched" and "what the support check counts" mean the same thing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_MARKER = re.compile(r"\[(\d+)\]")
_STOP = frozenset(STOPWORDS_EN) | {"paper", "papers", "work", "works", "propose", "proposed", "approach",
                                    "method", "methods", "using", "use", "used", "based", "also", "which", "what"}
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def terms(text: str) -> list[str]:
    """Content-word stems: `terms("Vision Transformers with convolutions")` ->
    `["vision", "transform", "convolut"]`."""
    return [_stem(w) for w in _TOKEN.findall(text.lower()) if w not in _STOP]


# Question and auxiliary words, which bm25s's (Lucene's) 33 stop words keep. Every question
# holds some ("How does X do ...?"); as query terms they matched titles that hold them ("When
# does dough become a bagel?" for "What does DAGNN do?"). Dropped from questions only: the
# index, feedback's expansion terms and the abstracts' side of every overlap keep their terms.
_QUESTION_STEMS = frozenset(_stem(w) for w in (
    "how", "why", "when", "where", "who", "whom", "whose", "does", "do", "did", "doing", "done", "can", "could",
    "would", "should", "may", "might", "must", "has", "have", "had", "having", "been", "being", "were", "am",
    "we", "our", "you", "your", "me", "my"))


def query_terms(question: str) -> list[str]:
    """The terms of a question: `terms` without question and auxiliary words.
    `query_terms("How does DAGNN do it?")` -> `["dagnn"]`."""
    return [t for t in terms(question) if t not in _QUESTION_STEMS]


def strip_markers(text: str) -> str:
    """`strip_markers("CvT adds convolutions [2].")` -> `"CvT adds convolutions ."`"""
    return _MARKER.sub("", text)


def markers(text: str) -> list[int]:
    """Citation markers in order of appearance: `markers("a [1] b [3][1]")` -> `[1, 3, 1]`."""
    return [int(m) for m in _MARKER.findall(text)]


@lru_cache(maxsize=1)
def _punkt():
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    return split_by_sentence_tokenizer()


# Abbreviations after which punkt splits but a sentence never ends ("(i.e. mixing ...)").
_NO_END = re.compile(r"(?:\b(?:i\.e|e\.g|cf|vs|viz|approx|resp|fig|figs|eq|eqs|sec|tab)|\bet al)\.$", re.I)
_FIRST_LETTER = re.compile(r"[^\W\d_]")


def sentences(text: str) -> list[str]:
    """Sentences of an abstract (punkt, via llama-index's bundled model), each a verbatim
    slice of `text` without surrounding whitespace.

    Punkt's English model splits after "i.e." or "vs." and before a lower-case continuation;
    such pieces are joined back, so a quoted sentence is never cut mid-clause:
    `sentences("Two layers (i.e. mixing) work. Done.")` -> `["Two layers (i.e. mixing) work.", "Done."]`
    """
    pieces = [p.strip() for p in _punkt()(text) if p.strip()]
    spans: list[list[int]] = []  # [start, end) in `text`: a joined sentence stays verbatim
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:  # punkt normalised something: fall back to the pieces as given
            return pieces
        cursor = start + len(piece)
        letter = _FIRST_LETTER.search(piece)
        continues = letter is not None and letter.group().islower()
        if spans and (continues or _NO_END.search(text[spans[-1][0]:spans[-1][1]])):
            spans[-1][1] = cursor
        else:
            spans.append([start, cursor])
    return [text[a:b] for a, b in spans]


def support_score(claim: str, evidence: str) -> float:
    """Share of the claim's content-word stems that occur in the evidence (0..1).

    The support check for citations: a sentence copied from an abstract scores 1.0; a
    sentence about something else scores near 0. Markers are ignored. A claim with no
    content words (e.g. "And it is.") counts as supported: it asserts nothing.
    `support_score("CvT adds convolutions to ViT [1]", "CvT introduces convolutions into ViT")` -> 0.75
    """
    claim_terms = set(terms(strip_markers(claim)))
    if not claim_terms:
        return 1.0
    return len(claim_terms & set(terms(evidence))) / len(claim_terms)


class Idf:
    """Smoothed inverse document frequency, the one formula for the corpus and for a handful
    of texts: `idf(t) = ln(1 + N / (1 + df(t)))`; a term no document has gets the maximum,
    ln(1 + N). `doc_freq(t)` counts the documents holding `t` (the lexical index's statistics,
    `rag.retrieval.Index.idf`); `Idf.of(tokenized_docs)` counts them in memory.
    `t in idf` tells whether any document contains `t`.

    `Idf.of([["a", "b"], ["a"]])("b")` -> `ln(1 + 2 / 2)` = 0.693...
    """

    def __init__(self, doc_freq: Callable[[str], int], n: int):
        self.doc_freq, self.n = doc_freq, n

    @classmethod
    def of(cls, tokenized_docs: list[list[str]]) -> Idf:
        df = Counter(t for doc in tokenized_docs for t in set(doc))
        return cls(lambda term: df.get(term, 0), len(tokenized_docs))

    def __call__(self, term: str) -> float:
        df = self.doc_freq(term)
        return math.log(1 + self.n / (1 + df)) if df else math.log(1 + self.n)

    def __contains__(self, term: str) -> bool:
        return self.doc_freq(term) > 0


# Markdown's and HTML's active characters. Backslash-escaped, each renders as itself (CommonMark:
# any ASCII punctuation may be escaped), so corpus text cannot become a link, an image that a
# browser fetches, an HTML element or emphasis that runs on into the answer.
_MD_ACTIVE = re.compile(r"([\\`*_\[\]<>!&|~#])")


# What Markdown's auto-linking (GFM "linkify") turns into a link without any markup: a
# scheme's "://", "www.", an e-mail's "@". Escaping one character of each breaks the match.
_AUTOLINK = re.compile(r"(?<=\w)(:)(?=//)|(?<=\bwww)(\.)|(?<=\w)(@)(?=\w)", re.I)


def escape_md(text: str) -> str:
    """Corpus text made inert inside Markdown: it renders as the literal characters, and
    neither markup nor a bare URL becomes a link, an image or HTML.

    `escape_md("![x](http://h/p.png) <b>")` -> `"\\!\\[x\\](http\\://h/p.png) \\<b\\>"`
    """
    return _AUTOLINK.sub(lambda m: "\\" + m.group(0), _MD_ACTIVE.sub(r"\\\1", text))


_MD_ESCAPED = re.compile(r"\\([\\`*_\[\]<>!&|~#:.@])")


def unescape_md(text: str) -> str:
    """`escape_md` undone: `unescape_md(escape_md(s)) == s` for any `s`."""
    return _MD_ESCAPED.sub(r"\1", text)


_LINK_ACTIVE = re.compile(r"\[(\d+)\]|([\\`\[\]<>!&])")


def inert_links(text: str) -> str:
    """Generated Markdown with its citation markers and emphasis kept but links, images and
    HTML made inert: a model that copies `![x](http://...)` from an abstract cannot make the
    browser fetch it.

    `inert_links("See [1] and [site](http://x) <img>")` -> `"See [1] and \\[site\\](http://x) \\<img\\>"`
    """
    return _LINK_ACTIVE.sub(lambda m: m.group(0) if m.group(1) else "\\" + m.group(2), text)


_AUTHOR_SEP = re.compile(r",|\band\b")


def author_names(authors: str | None) -> list[str]:
    """The names in an `authors` string, the one splitter (export, author filter, UI cards).

    Names are separated by commas and the word "and": `author_names("Ada Lovelace, Alan M.
    Turing and Li Wei")` -> `["Ada Lovelace", "Alan M. Turing", "Li Wei"]`. A semicolon
    separates names written surname first, whose comma is then part of the name:
    `author_names("Lovelace, Ada; Turing, Alan M.")` -> `["Ada Lovelace", "Alan M. Turing"]`.
    """
    if not authors:
        return []
    if ";" not in authors:
        return [" ".join(a.split()) for a in _AUTHOR_SEP.split(authors) if a.strip()]
    names = []
    for part in re.split(r";|\band\b", authors):
        last, comma, first = part.partition(",")
        name = " ".join(f"{first} {last}".split()) if comma and "," not in first else " ".join(part.split())
        if name:
            names.append(name)
    return names


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Case-folded word tokens, how names are matched: `words("ConViT: Soft") -> ["convit", "soft"]`."""
    return _WORD.findall(text.casefold())


# Interrogatives: how a question asks, never what about. Like the question stems above they are
# no query term; they are left out of the text a question is searched with, too (a sentence
# embedding of "Which ..." leans towards every abstract that proposes something).
INTERROGATIVES = frozenset({"which", "what", "who", "whom", "whose", "when", "where", "why", "how"})
# Numbers written as words, as questions use them ("give me three papers", "the first two").
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20}
