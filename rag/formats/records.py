"""A loose record (a dict from any reader) into a `Paper`, or the reason it cannot be one.

Every string field passes through `rag.clean.clean_text` (NFC, no control or invisible
characters) and then has its whitespace collapsed, so what is indexed and shown is the same
whatever the file's format; a title that is empty after that is refused.
"""

from __future__ import annotations

import dataclasses
import re

from rag.clean import clean_text
from rag.formats.latex import plain_text
from rag.models import Paper

MIN_ABSTRACT_CHARS = 50
MAX_TITLE_CHARS = 400
# arXiv caps abstracts at 1,920 characters; ten times that is still an abstract. Anything
# longer is a full text or a broken export and would cost hundreds of chunks to embed.
MAX_ABSTRACT_CHARS = 20_000

# Fields a record may carry that the Paper model may not have yet (venue, doi): set when it has.
_PAPER_FIELDS = {f.name for f in dataclasses.fields(Paper)}


def clean(text: str) -> str:
    """Collapse whitespace: `clean(" a\\n  b ")` -> `"a b"`. (str.split rather than a regex:
    the same whitespace, ten times faster on a multi-gigabyte snapshot.)"""
    return " ".join(text.split())


def normal(text: str) -> str:
    """The indexed form of a text field: `normal(" Deep\\u200b  Learning ")` -> `"Deep Learning"`."""
    return clean(clean_text(text))


_ARXIV_NEW = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}(v\d+)?$")  # 0704.0001, 2101.00001v2
_ARXIV_OLD = re.compile(r"^[a-z-]+(\.[A-Z]{2})?/(\d{2})\d{5}(v\d+)?$")  # hep-th/9901001


def year_of(value: object) -> int | None:
    """The first plausible year in a value: `year_of("2020///")` -> 2020."""
    match = re.search(r"(19|20)\d\d", str(value or ""))
    return int(match.group(0)) if match else None


def arxiv_year(record: dict) -> int | None:
    """Year of first submission: the first version's date, else the id, else update_date.

    `arxiv_year({"id": "2103.15808", "update_date": "2021-03-30"})` -> 2021;
    `arxiv_year({"id": "hep-th/9901001"})` -> 1999.
    """
    versions = record.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        if year := year_of(versions[0].get("created")):
            return year
    raw = str(record.get("id") or "").strip()
    if m := _ARXIV_NEW.match(raw):
        return 2000 + int(m.group(1))
    if m := _ARXIV_OLD.match(raw):
        yy = int(m.group(2))
        return 1900 + yy if yy >= 91 else 2000 + yy
    return year_of(record.get("update_date"))


def _text(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, list):  # authors as names, or as objects (Semantic Scholar's {"name": ...})
        value = ", ".join(str(v.get("name") or " ".join(map(str, v.values()))) if isinstance(v, dict) else str(v)
                          for v in value)
    return normal(str(value)) or None


def to_paper(record: dict, source: str) -> Paper | str:
    """A `Paper` from a loose record, or the reason it cannot be one."""
    for key in ("title", "abstract"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} is a {type(record[key]).__name__}, not text"
    raw_title = record.get("title") or ""
    title = normal(plain_text(raw_title))  # LaTeX (`\ie`, `$x^2$`) is never indexed or shown raw
    abstract = normal(plain_text(record.get("abstract") or ""))
    if not title:
        return "title is empty after removing invisible and control characters" if clean(raw_title) \
            else "missing title"
    if len(title) > MAX_TITLE_CHARS:
        return f"title is {len(title):,} characters, longer than the {MAX_TITLE_CHARS} limit"
    if not abstract:
        return "missing abstract"
    if len(abstract) < MIN_ABSTRACT_CHARS:
        return f"abstract is {len(abstract)} characters, shorter than the {MIN_ABSTRACT_CHARS} minimum"
    if len(abstract) > MAX_ABSTRACT_CHARS:
        return (f"abstract is {len(abstract):,} characters, longer than the {MAX_ABSTRACT_CHARS:,} limit "
                "(a full text? only abstracts are indexed)")
    raw_id = normal(str(record.get("id") or ""))
    is_arxiv = bool(raw_id) and ("update_date" in record or "categories" in record)
    doi = _text(record, "doi")
    if is_arxiv:
        paper_id, url = f"arxiv:{raw_id}", f"https://arxiv.org/abs/{raw_id}"
        year = year_of(record.get("year")) or arxiv_year(record)
    else:
        paper_id = f"id:{raw_id}" if raw_id else ""
        url = _text(record, "url") or (f"https://doi.org/{doi}" if doi else None)
        year = year_of(record.get("year"))
    extra = {k: v for k, v in (("venue", _text(record, "venue")), ("doi", doi),
                              ("categories", _text(record, "categories"))) if k in _PAPER_FIELDS}
    return Paper(paper_id=paper_id, title=title, abstract=abstract, authors=_text(record, "authors"),
                 year=year, url=url, source=source, **extra)
