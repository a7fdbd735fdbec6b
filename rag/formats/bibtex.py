"""BibTeX (`.bib`) as Zotero, JabRef, Mendeley and Google Scholar export it, parsed with
bibtexparser 2.x; LaTeX in fields becomes plain Unicode text (pylatexenc).

Fields: title, abstract, author (`Last, First and ...` -> `First Last, ...`), year (or a
biblatex `date`), doi/url (the DOI link is preferred: it is the stable one), venue (journal,
booktitle, journaltitle, howpublished). @String macros are resolved; @Comment (JabRef's
jabref-meta), @Preamble and entries that do not parse are not records: a broken entry is
reported at its line. The file is read whole (bibtexparser parses a string); reference
libraries are small next to MAX_BIB_BYTES.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import bibtexparser
from bibtexparser.middlewares.names import parse_single_name_into_parts, split_multiple_persons_names
from bibtexparser.model import DuplicateBlockKeyBlock, ParsingFailedBlock
from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

from rag.formats.base import Skipped, read_lines

MAX_BIB_BYTES = 256 * 1024 * 1024
_VENUE_FIELDS = ("journal", "journaltitle", "booktitle", "howpublished")
# Abbreviation macros that papers define for themselves (`\ie`, `\eg`, usually with \xspace):
# unknown to pylatexenc, which would drop them, so they are spelled out before parsing.
_ABBREVIATIONS = {"ie": "i.e.", "eg": "e.g.", "etal": "et al.", "cf": "cf.", "etc": "etc.", "wrt": "w.r.t.",
                  "vs": "vs.", "aka": "a.k.a.", "iid": "i.i.d."}
_ABBREVIATION = re.compile(r"\\(" + "|".join(_ABBREVIATIONS) + r")(?![A-Za-z])\.?(\{\})?")
# Mendeley writes "~" and "^" as accents on nothing (`{\~{}}`), which decode to nothing.
_EMPTY_ACCENT = re.compile(r"\\([~^])\{\}")
_CONTEXT = get_default_latex_context_db()
_CONTEXT.add_context_category("rag-text", prepend=True, macros=[
    MacroTextSpec("textasciicircum", "^"), MacroTextSpec("cite", ""), MacroTextSpec("citep", ""),
    MacroTextSpec("citet", ""), MacroTextSpec("url", "%s")])
_LATEX = LatexNodes2Text(latex_context=_CONTEXT, math_mode="text", strict_latex_spaces=True)
# What is left of LaTeX after one decoding: Mendeley escapes a LaTeX abstract's own macros
# (`$\backslash$emph{\{}x{\}}`), so the first pass yields `\emph{x}` and a second is needed.
_STILL_LATEX = re.compile(r"\\[A-Za-z]{2,}")
# A bare % is text in a reference manager's abstract, but a comment to LaTeX that would drop
# the rest of the field, and a bare & or # would be dropped: escape them first. (Zotero writes
# \%, JabRef keeps what was typed.)
_BARE_PERCENT = re.compile(r"(?<!\\)([%&#])")

# bibtexparser logs every failed block as a warning; we report them as Skipped instead.
logging.getLogger("bibtexparser").setLevel(logging.ERROR)


def latex_to_text(value: str) -> str:
    """Plain text of a LaTeX field value.

    `latex_to_text(r"Sch{\\"o}lkopf -- \\emph{kernel} 95\\% \\& $\\alpha$")`
    -> `"Schölkopf – kernel 95% & α"`.
    """
    if "\\" not in value and "{" not in value and "$" not in value and "-" not in value and "~" not in value:
        return value
    text = value
    for _ in range(2):
        text = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(1)], text)
        text = _EMPTY_ACCENT.sub(lambda m: r"{\textasciitilde}" if m.group(1) == "~" else r"{\textasciicircum}", text)
        try:
            text = _LATEX.latex_to_text(_BARE_PERCENT.sub(r"\\\1", text))
        except Exception:  # pylatexenc is lenient; on anything it cannot take, keep the text readable
            return text.replace("{", "").replace("}", "")
        if not _STILL_LATEX.search(text):
            break
    return text


def _person(name: str) -> str:
    try:
        return latex_to_text(parse_single_name_into_parts(name).merge_first_name_first)
    except Exception:  # an unbalanced name: the text as written
        return latex_to_text(name)


def _literal(value: str) -> str:
    """A DOI or URL as written: no LaTeX decoding (a `~` or `_` in a URL is meant), only the
    escapes and braces exporters add."""
    return re.sub(r"\\([_%&#~$])", r"\1", value).replace("{", "").replace("}", "").strip()


def _record(entry) -> dict:
    fields = {k.lower(): str(f.value) for k, f in entry.fields_dict.items()}
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
    text: list[str] = []
    problems: dict[int, str] = {}
    size = 0
    for lineno, line, problem in read_lines(path):
        size += len(line) + 1
        if size > MAX_BIB_BYTES:
            skipped.append(Skipped(path.name, 0, f"larger than the {MAX_BIB_BYTES // 2**20} MiB a BibTeX "
                                   "file may be (it is parsed whole); split it"))
            return
        if problem:
            problems[lineno] = problem
        text.append(line)
    library = bibtexparser.parse_string("\n".join(text))
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
            yield first, _record(block)
