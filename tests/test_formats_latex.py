"""LaTeX decoding is bounded and linear (issue 30.4): limits are checked before decoding, and
text with nothing but dashes and ties is decoded without pylatexenc, identically."""

from __future__ import annotations

import random
import time

from rag.corpus import PaperStream
from rag.formats.latex import _LATEX, MAX_LATEX_CHARS, latex_to_text


def _bib_seconds(path, n_chars: int) -> float:
    """CPU seconds (best of two) to read a .bib whose one abstract is `n_chars` of LaTeX."""
    body = "A word-word {with} $x$ and \\emph{more} -- text. " * (n_chars // 48)  # braces balanced
    path.write_text(f"@article{{big,\n  title = {{A title}},\n  abstract = {{{body}}}\n}}\n", encoding="utf-8")
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        stream = PaperStream([path])
        assert list(stream) == []
        best = min(best, time.process_time() - start)
    assert "longer than the 20,000 limit" in stream.skipped[0].reason
    return best


def test_an_oversized_field_is_refused_before_it_is_decoded(tmp_path):
    """The probe: 20 s for a 1 MB field, 301 s for 4 MB (quadratic), all to refuse it.
    Now the work grows with the file's size at most: 4x the field, under 6x the time (a
    ratio of the same machine's CPU time, not a wall-clock bound)."""
    small = _bib_seconds(tmp_path / "one.bib", 1_000_000)
    large = _bib_seconds(tmp_path / "four.bib", 4_000_000)
    assert large < 6 * small + 0.05, (small, large)  # linear: 4x; quadratic: 16x
    big = "x--y " * (MAX_LATEX_CHARS // 5 + 1)
    assert latex_to_text(big) == big  # over the limit: left as written, and refused by its length


def test_plain_dashes_and_ties_decode_as_pylatexenc_does():
    rng = random.Random(7)
    alphabet = list("ab -~-~.,;:!?'\"()[]<>*+=/|@09\t\n ") + ["\u00e9", "\u2013", "\xa0"]
    checked = 0
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        if "-" in text or "~" in text:
            assert latex_to_text(text) == _LATEX.latex_to_text(text), repr(text)
            checked += 1
    assert checked > 1000
    assert latex_to_text("pp. 1--2, a---b, x~y") == "pp. 1\u20132, a\u2014b, x\xa0y"
