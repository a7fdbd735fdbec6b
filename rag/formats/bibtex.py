"""BibTeX (`.bib`) as Zotero, JabRef, Mendeley and Google Scholar export it, parsed with
bibtexparser 2.x; LaTeX in fields becomes plain Unicode text (pylatexenc).

Fields: title, abstract, author (`Last, First and ...` -> `First Last, ...`), year (or a
biblatex `date`), doi/url (the DOI link is preferred: it is the stable one), venue (journal,
booktitle, journaltitle, howpublished). @String macros and `#` concatenation are resolved in
every field (`resolve_value`), and an entry inherits its venue and year from the entry its
`crossref` names; @Comment (JabRef's
jabref-meta), @Preamble and entries that do not parse are not records: a broken entry is
reported at its line. The file is read whole (bibtexparser parses a string); reference
libraries are small next to MAX_BIB_BYTES. The LaTeX decoding is `rag.formats.latex`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import bibtexparser
from bibtexparser.middlewares.names import parse_single_name_into_parts, split_multiple_persons_names
from bibtexparser.model import DuplicateBlockKeyBlock, ParsingFailedBlock

from rag.formats.base import Skipped, open_binary, read_lines
from rag.formats.latex import latex_to_text

MAX_BIB_BYTES = 256 * 1024 * 1024
_VENUE_FIELDS = ("journal", "journaltitle", "booktitle", "howpublished")
# bibtexparser logs every failed block as a warning; we report them as Skipped instead.
logging.getLogger("bibtexparser").setLevel(logging.ERROR)


def _person(name: str) -> str:
    try:
        return latex_to_text(parse_single_name_into_parts(name).merge_first_name_first)
    except Exception:  # an unbalanced name: the text as written
        return latex_to_text(name)


def _literal(value: str) -> str:
    """A DOI or URL as written: no LaTeX decoding (a `~` or `_` in a URL is meant), only the
    escapes and braces exporters add."""
    return re.sub(r"\\([_%&#~$])", r"\1", value).replace("{", "").replace("}", "").strip()


_MONTHS = {m: name for m, name in zip(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
     "November", "December"))}
# What an entry takes from the one its `crossref` names when it has none of its own (the
# parent's title is the child's booktitle); never a title, abstract or identifier.
_INHERITED = ("year", "date", "booktitle", "journal", "journaltitle", "howpublished", "publisher")


def _piece_end(value: str, i: int) -> int:
    """The index just past the `{...}` or `"..."` piece starting at `value[i]` (braces nest;
    a quote inside braces is text)."""
    depth = 0
    for j in range(i + 1, len(value)):
        c = value[j]
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0 and value[i] == "{":
                return j + 1
            depth -= 1
        elif c == '"' and depth == 0 and value[i] == '"':
            return j + 1
    return len(value)  # unbalanced: the rest


def resolve_value(value: str, strings: dict[str, str]) -> str:
    """A raw BibTeX field value as BibTeX reads it: `{...}` and `"..."` pieces joined by `#`,
    bare names replaced by their @string (month abbreviations built in; an unknown name stays
    as written), numbers as they are. Linear in the value's length.

    `resolve_value('{A } # ml # " B"', {"ml": "learning"})` -> `"A learning B"`.
    """
    value = value.strip()
    closing = {"{": "}", '"': '"'}
    one_piece = value[:1] in closing and value[-1] == closing[value[0]] and _piece_end(value, 0) == len(value)
    if "#" not in value and one_piece:
        return value[1:-1]  # the common case
    parts, i = [], 0
    while i < len(value):
        c = value[i]
        if c.isspace() or c == "#":
            i += 1
        elif c in ('{', '"'):
            end = _piece_end(value, i)
            closed = end - i >= 2 and value[end - 1] == closing[c]
            parts.append(value[i + 1:end - 1] if closed else value[i + 1:])
            i = end
        else:
            j = i
            while j < len(value) and value[j] not in '#{"' and not value[j].isspace():
                j += 1
            word = value[i:j]
            parts.append(strings.get(word.lower(), _MONTHS.get(word.lower(), word)))
            i = j
    return "".join(parts)


def _fields(library) -> dict[str, dict[str, str]]:
    """Entry key (lower case) -> its fields (lower-case names) with @string macros and `#`
    resolved and `crossref` fields inherited."""
    strings: dict[str, str] = {}
    for block in library.strings:  # in file order: a macro may use the ones before it
        strings[str(block.key).lower()] = resolve_value(str(block.value), strings)
    fields = {str(e.key).lower(): {k.lower(): resolve_value(str(f.value), strings) for k, f in e.fields_dict.items()}
              for e in library.entries}
    for own in fields.values():
        parent = fields.get(own.get("crossref", "").strip().lower())
        if parent is None or parent is own:
            continue
        for name in _INHERITED:
            if not own.get(name) and parent.get(name):
                own[name] = parent[name]
        if not any(own.get(k) for k in _VENUE_FIELDS) and parent.get("title"):
            own["booktitle"] = parent["title"]
    return fields


def _record(entry, fields: dict[str, str]) -> dict:
    doi = _literal(fields.get("doi", "")).removeprefix("https://doi.org/").removeprefix("http://dx.doi.org/")
    url = f"https://doi.org/{doi}" if doi else _literal(fields.get("url", "")) or None
    record = {
        "title": latex_to_text(fields.get("title", "")),
        "abstract": latex_to_text(fields.get("abstract", "")),
        "authors": [_person(n) for n in split_multiple_persons_names(fields.get("author", ""))] or None,
        "year": fields.get("year") or fields.get("date"),
        "url": url, "doi": doi or None,
        "venue": next((latex_to_text(fields[k]) for k in _VENUE_FIELDS if fields.get(k)), None),
        "_label": f"@{entry.entry_type.lower()}{{{entry.key}}}",
    }
    return {k: v for k, v in record.items() if v}


def read_bibtex(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Entries of a BibTeX file, each at its first line. Lines that are not UTF-8 are
    reported with the entry they fall in (decoded with replacement to keep parsing)."""
    with open_binary(path) as fh:
        data = fh.read(MAX_BIB_BYTES + 1)  # (a .gz stops inflating here)
    if len(data) > MAX_BIB_BYTES:
        skipped.append(Skipped(path.name, 0, f"larger than the {MAX_BIB_BYTES // 2**20} MiB a BibTeX "
                               "file may be (it is parsed whole); split it"))
        return
    problems: dict[int, str] = {}
    try:  # one decode in C; only a file that is not UTF-8 is read line by line to say where
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        lines = []
        for lineno, line, problem in read_lines(path):
            if problem:
                problems[lineno] = problem
            lines.append(line)
        text = "\n".join(lines)
    del data
    library = bibtexparser.parse_string(text, parse_stack=[])  # values raw: `resolve_value` reads them
    fields = _fields(library)
    blocks = sorted(library.entries + library.failed_blocks, key=lambda b: b.start_line)
    for block in blocks:
        first = block.start_line + 1
        last = first + block.raw.count("\n")
        problem = next((p for n, p in problems.items() if first <= n <= last), None)
        if problem:
            skipped.append(Skipped(path.name, first, problem))
        elif isinstance(block, DuplicateBlockKeyBlock):
            skipped.append(Skipped(path.name, first, f"duplicate entry key {block.key!r}; the first one is read"))
        elif isinstance(block, ParsingFailedBlock):
            err = block.error
            reason = getattr(err, "abort_reason", None) or str(err).split("\n")[0] or type(err).__name__
            skipped.append(Skipped(path.name, first, f"bad BibTeX entry ({reason})"))
        else:
            yield first, _record(block, fields[str(block.key).lower()])
