"""Typos in questions, corrected against the index's own vocabulary.

A question typed in a hurry ("tranformer segmantation") holds words no abstract contains.
Searched as typed they match nothing, and the abstention model reads words no abstract holds
as a topic the corpus does not cover. So a word is corrected when the index has no chunk
holding its stem but has chunks holding the stem of a word one edit away (a letter deleted,
inserted, replaced, or two swapped: Norvig's edits1). An English word the index holds wins,
then the candidate most chunks hold: "segmantation" is "segmentation", not "semantation",
whose stem happens to be that of "semantic", which more chunks hold.

Short words (up to MAX_ABBREVIATION letters) are read as abbreviations, in two classes:
- clipped words, the start of an English word ("seg", "impl", "perf", "obj"): the one most
  chunks hold. A clip the index knows from a chunk or two ("recog") counts too, when the word it
  clips is RARE_RATIO times as frequent;
- contractions that drop letters ("imgs", "txt"): the English word that holds the
  abbreviation's letters in order and starts with its first two letters, or with its first
  and ends with its last ("txt" -> "text", but "dpo" is not "deploy"), most held first.

A compound typed closed that the abstracts write open or hyphenated ("fewshot", "zeroshot",
"superresolution", "crossattention") is split where the two parts make a phrase that most papers
hold ("few-shot"), before any edit is tried: its parts are what the index holds, and as one
word it would read as a topic no abstract covers. A word whose parts no abstract puts side by
side ("deepfake" here) is left to the abstention model.

Left as typed: words the index knows, English words (pyspellchecker's dictionary: "stock" in
"stock price forecasting" is a topic the corpus lacks, which the abstention model must see,
not a typo of "stack"), stop words, words under MIN_ABBREVIATION letters, name-like tokens
("LoFTR", "YOLOv3": a name is not a typo), and the words the caller says are how questions ask
(the question model's frame words: "pls").
One doc-frequency lookup per candidate stem, cached: a few hundred lookups per unknown word,
none for a question without one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection
from functools import cache, lru_cache

from rag.text import terms

MIN_LENGTH = 4  # shorter words have too many neighbours one edit away to correct by edits
MIN_COMPOUND = 6  # "fewshot": shorter closed compounds are rare, and a short typo may split into a phrase
MIN_ABBREVIATION = 3  # "obj", "seg": shorter words are too ambiguous to expand
MAX_ABBREVIATION = 5
RARE = 2  # chunks holding a clipped word ("recog") that the index happens to know
RARE_RATIO = 50  # how many more chunks must hold the word it clips, per chunk holding the clip
_WORD = re.compile(r"\b[A-Za-z][a-z]+\b")  # all lower case but perhaps the first letter: not a name


def edits1(word: str) -> set[str]:
    """Every string one edit from `word`.

    >>> "transformer" in edits1("tranformer"), "segmentation" in edits1("segmantation")
    (True, True)
    """
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    letters = string.ascii_lowercase
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in letters}
    inserts = {a + c + b for a, b in splits for c in letters}
    return deletes | swaps | replaces | inserts


@cache
def _dictionary() -> frozenset[str]:
    """pyspellchecker's English words (loaded once, about a second)."""
    from spellchecker import SpellChecker

    return frozenset(SpellChecker(language="en").word_frequency.keys())


def english() -> Callable[[str], bool]:
    """Whether a lower-case word is in pyspellchecker's English dictionary."""
    return _dictionary().__contains__


class Speller:
    """`Speller(doc_freq).correct("tranformer models")` -> "transformer models", where
    `doc_freq(stem)` is how many chunks of the index hold a term, and `phrase_count(words)` how
    many papers hold those words side by side (`("few", "shot")`; without it no compound is split)."""

    def __init__(self, doc_freq: Callable[[str], int], keep: Collection[str] = (),
                 is_word: Callable[[str], bool] | None = None,
                 phrase_count: Callable[[tuple[str, str]], int] | None = None):
        self._df = lru_cache(maxsize=65536)(doc_freq)
        self._phrases = None if phrase_count is None else lru_cache(maxsize=65536)(phrase_count)
        self.keep = frozenset(keep)
        self.is_word = is_word or english()

    def known(self, word: str) -> bool:
        stems = terms(word)
        return not stems or self._df(stems[0]) > 0  # a stop word has no stem: nothing to correct

    def suggest(self, word: str) -> str | None:
        """The correction of one lower-case word, or None when it needs none or has none."""
        if len(word) < MIN_ABBREVIATION or word in self.keep or self.is_word(word):
            return None
        short = len(word) <= MAX_ABBREVIATION
        if self.known(word):
            stem = terms(word)
            # "recog": a clipped word one or two chunks happen to hold, when the word it clips is
            # far more frequent.
            if short and self._df(stem[0]) <= RARE:
                expanded, df = self._prefix_of(word)
                if expanded and df >= RARE_RATIO * RARE:
                    return expanded
            # "featur": the index knows its stem; the English word with that stem reads better
            return next((c for c in sorted(edits1(word)) if self.is_word(c) and terms(c) == stem), None)
        if (split := self._split(word)) is not None:  # "fewshot": a compound typed closed
            return split
        if short and (expanded := self._prefix_of(word)[0]):  # "seg", "impl", "perf": clipped words
            return expanded
        if len(word) < MIN_LENGTH:
            return self._expand(word)
        best, best_key = None, (False, 0)
        for candidate in sorted(edits1(word)):
            stems = terms(candidate)
            df = self._df(stems[0]) if len(stems) == 1 else 0
            key = (df > 0 and self.is_word(candidate), df)  # an English word the index holds, then the most held
            if key > best_key:
                best, best_key = candidate, key
        if best is None or not best_key[0]:  # no English word one edit away: perhaps an abbreviation
            return self._expand(word) or best
        return best

    def _split(self, word: str) -> str | None:
        """The compound `word` written as the abstracts write it: "fewshot" -> "few-shot", the
        split whose parts most papers hold as a phrase; None when no split is such a phrase."""
        if self._phrases is None or len(word) < MIN_COMPOUND:
            return None
        held, at = max((self._phrases((word[:i], word[i:])), i) for i in range(2, len(word) - 1))
        return f"{word[:at]}-{word[at:]}" if held else None

    def _prefix_of(self, word: str) -> tuple[str | None, int]:
        """The English word that `word` clips ("seg" -> "segmentation"... whichever such word
        most chunks hold), with that count; (None, 0) when the index holds none."""
        return self._most_held(c for c in english_words(word[:2]) if len(c) > len(word) and c.startswith(word))

    def _most_held(self, candidates) -> tuple[str | None, int]:
        best, best_df = None, 0
        for candidate in candidates:
            stems = terms(candidate)
            df = self._df(stems[0]) if len(stems) == 1 else 0
            if df > best_df:
                best, best_df = candidate, df
        return best, best_df

    def _expand(self, word: str) -> str | None:
        """A contraction's English word (see the module docstring): "imgs" -> "images", "txt" ->
        "text". Acronyms typed in capitals never get here (they are names)."""
        if len(word) > MAX_ABBREVIATION:
            return None
        return self._most_held(c for c in english_words(word[0]) if len(c) > len(word) and _subsequence(word, c)
                               and (c[1] == word[1] or c[-1] == word[-1]))[0]

    def correct(self, text: str) -> str:
        """`text` with each correctable word replaced, capitalisation of its first letter kept."""
        def fix(match: re.Match) -> str:
            word = match.group(0)
            better = self.suggest(word.lower())
            if better is None:
                return word
            return better.capitalize() if word[0].isupper() else better

        return _WORD.sub(fix, text)


def _subsequence(short: str, long: str) -> bool:
    """`_subsequence("imgs", "images")` -> True; `_subsequence("dpo", "depth")` -> False."""
    rest = iter(long)
    return all(c in rest for c in short)


@cache
def english_words(prefix: str) -> tuple[str, ...]:
    """The dictionary's words that start with `prefix`, sorted."""
    return tuple(sorted(w for w in _dictionary() if w.startswith(prefix) and w.isalpha()))
