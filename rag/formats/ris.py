"""RIS (`.ris`) as Mendeley, Zotero, EndNote and publishers export it, parsed with rispy one
record at a time (`TY  -` ... `ER  -`), so positions are the records' first lines and a file
of any size streams.

Fields, in the order tried: title TI, T1; abstract AB, N2 (Mendeley); authors AU, A1
(`Last, First` -> `First Last`); year PY, Y1, DA (`2020///` and `2015/07/06/` forms); DOI DO
(its link preferred as the URL), else the first UR; venue T2, JO, JF, JA, J2, C3. RIS text
is plain, so no LaTeX decoding here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import rispy

from rag.formats.base import Skipped, read_lines

_TAG = re.compile(r"^[A-Z][A-Z0-9]  -( |$)")
_VENUES = ("secondary_title", "journal_name", "alternate_title3", "alternate_title2", "alternate_title1", "custom3")


def _person(name: str) -> str:
    """`_person("Kingma, Diederik P.")` -> `"Diederik P. Kingma"`; `Last, First, Jr.` too."""
    parts = [p.strip() for p in name.split(",") if p.strip()]
    if len(parts) == 2:
        return f"{parts[1]} {parts[0]}"
    if len(parts) == 3:
        return f"{parts[1]} {parts[0]} {parts[2]}"
    return name.strip()


def _first(entry: dict, *keys: str) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, list):
            value = next((v for v in value if v), None)
        if value:
            return str(value)
    return None


def _record(entry: dict) -> dict:
    doi = (_first(entry, "doi") or "").strip().removeprefix("https://doi.org/").removeprefix("http://dx.doi.org/")
    title = _first(entry, "title", "primary_title") or ""
    record = {
        "title": title,
        "abstract": _first(entry, "abstract", "notes_abstract"),
        "authors": [_person(a) for a in (entry.get("authors") or []) + (entry.get("first_authors") or [])] or None,
        "year": _first(entry, "year", "publication_year", "date"),
        "url": f"https://doi.org/{doi}" if doi else _first(entry, "urls"),
        "doi": doi or None,
        "venue": _first(entry, *_VENUES),
        "_label": f"{entry.get('type_of_reference', '?')} {title[:60]!r}",
    }
    return {k: v for k, v in record.items() if v}


def read_ris(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Records of a RIS file; text outside a record and records rispy refuses are reported.
    A record without its `ER  -` line is still read: it ends at the next `TY  -` (it used to
    swallow that record) or at the end of the file."""
    start = 0
    lines: list[str] = []
    problem: str | None = None

    def parsed() -> Iterator[tuple[int, dict]]:
        if problem:
            skipped.append(Skipped(path.name, start, problem))
            return
        try:
            entries = rispy.loads("\n".join(lines + ["ER  - "]))
        except Exception as err:  # rispy raises IOError/ValueError/KeyError on malformed records
            skipped.append(Skipped(path.name, start, f"bad RIS record ({err})"))
            return
        for entry in entries:
            yield start, _record(entry)

    for lineno, line, line_problem in read_lines(path):
        if lines and line.startswith("TY  -") and _TAG.match(line):
            yield from parsed()  # a record without its ER line ends where the next one starts
            lines = []
        if not lines:
            if not line.strip():
                continue
            if not line.startswith("TY  -"):
                what = (f"a {line[:2]} line outside a record (a record starts with TY)" if _TAG.match(line)
                        else f"not a RIS tag line: {line[:60]!r}")
                skipped.append(Skipped(path.name, lineno, line_problem or what))
                continue
            start, problem = lineno, None
        problem = problem or line_problem
        if _TAG.match(line) and line.startswith("ER  -"):
            yield from parsed()
            lines = []
        else:
            lines.append(line)
    if lines:
        yield from parsed()
