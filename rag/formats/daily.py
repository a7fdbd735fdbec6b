"""The Daily Papers page exports (`.txt`) bundled in rag/data/corpus, in both layouts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from rag.formats.base import Skipped, read_lines
from rag.formats.records import MAX_TITLE_CHARS, MIN_ABSTRACT_CHARS

# Page chrome of the Daily Papers exports, seen before the first paper.
_CHROME = {
    "new",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "subscribe",
    "daily papers",
    "by ak and the research community",
    "byak and the research community",
}
_DATE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(, \d{4})?$", re.I)
_SENTENCE_BREAK = re.compile(r"[a-z]{3}\. [A-Z]")  # "...images. We", not "vs. Convolution"


def _is_chrome(line: str) -> bool:
    low = line.casefold()
    return low in _CHROME or bool(_DATE.match(line))


def _looks_like_abstract(line: str) -> bool:
    """After a title: is this line its abstract (prose) or the next title? Prose is long, or
    has many words, or more than one sentence. The bundled titles are at most 176
    characters of one phrase (some with "?" or "!" inside); their abstracts at least 330."""
    if len(line) < MIN_ABSTRACT_CHARS:
        return False
    return len(line) > 200 or len(line.split()) > 30 or (len(line) >= 100 and bool(_SENTENCE_BREAK.search(line)))


def read_daily_papers(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Title/abstract pairs of a Daily Papers export, in either layout.

    Blank lines carry no meaning (000/001 separate everything with them, 002/003 don't), so
    the non-blank, non-chrome lines alternate title, abstract. Roles are checked, not
    assumed: a title followed by another title-like line lost its abstract (reported; the
    second line starts the next pair), and where a title is due, text longer than any title
    is reported as an abstract without one. A pair with a line that is not UTF-8 is
    reported once, at its title line.
    """
    pending: tuple[int, str, str | None] | None = None  # (title line, title, problem)
    in_header = True
    for lineno, line, problem in read_lines(path):
        line = line.strip()
        if in_header and line.startswith("Subscribe") and len(line) > len("Subscribe"):
            line = line[len("Subscribe"):].strip()  # the first title is glued to the chrome
        if not line or (problem is None and _is_chrome(line)):
            continue
        in_header = False
        if pending is None:  # a title is due; only text too long for any title is refused
            if len(line) > MAX_TITLE_CHARS:
                skipped.append(Skipped(path.name, lineno, problem or f"abstract without a title: {line[:60]!r}"))
            else:
                pending = (lineno, line, problem)
            continue
        title_line, title, title_problem = pending
        if not _looks_like_abstract(line):
            skipped.append(Skipped(path.name, title_line, title_problem or f"no abstract after title {title[:60]!r}"))
            pending = (lineno, line, problem)
            continue
        pending = None
        if title_problem or problem:
            where = "title" if title_problem else f"abstract on line {lineno}"
            skipped.append(Skipped(path.name, title_line, f"{where}: {title_problem or problem}"))
            continue
        yield title_line, {"title": title, "abstract": line}
    if pending is not None:
        skipped.append(Skipped(path.name, pending[0], pending[2] or f"no abstract after title {pending[1][:60]!r}"))
