"""Read paper files into `Paper` records, streaming, reporting every bad record.

Formats (picked by extension):
- `.txt`: the Daily Papers page exports bundled in data/corpus (both layouts);
- `.jsonl` / `.json`: one object per line with `title` and `abstract` (optional `id`,
  `authors`, `year`, `url`); objects that look like the arXiv metadata snapshot (`id`,
  `update_date`, `categories`) get arXiv ids, years and links;
- `.csv`: a header row with `title` and `abstract` columns and any optional ones.

Every reader is a generator over lines, so a multi-gigabyte snapshot never sits in memory
(a line over MAX_LINE_BYTES is skipped). A record that cannot be used becomes a `Skipped`
(file, line, reason) and reading goes on: one entry per record, so for every file
`records = read + skipped`. Entries with line 0 are about a whole file (empty, unreadable,
unsupported type) and stand for no record. Files must be UTF-8: a line that is not is
reported with the offending byte rather than guessed at. Abstracts over MAX_ABSTRACT_CHARS
are refused (a full text is not an abstract, and would cost hundreds of chunks).
This module does not touch the store; `PaperStream` deduplicates across files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from rag.models import Paper

SUPPORTED_SUFFIXES = {".txt", ".jsonl", ".json", ".csv"}
MIN_ABSTRACT_CHARS = 50
MAX_TITLE_CHARS = 400
# arXiv caps abstracts at 1,920 characters; ten times that is still an abstract. Anything
# longer is a full text or a broken export and would cost hundreds of chunks to embed.
MAX_ABSTRACT_CHARS = 20_000
MAX_LINE_BYTES = 8 * 1024 * 1024  # a longer line is skipped, read at most this much at a time

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


@dataclass(frozen=True)
class Skipped:
    """A record that was not ingested, and why (line 0: the whole file)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def clean(text: str) -> str:
    """Collapse whitespace: `clean(" a\\n  b ")` -> `"a b"`. (str.split rather than a regex:
    the same whitespace, ten times faster on a multi-gigabyte snapshot.)"""
    return " ".join(text.split())


def paper_id_for(title: str, version: int = 1) -> str:
    """Stable id for a paper known only by its title; a second, different abstract under the
    same title is version 2. `paper_id_for("Attention Is All You Need")` -> `"t-6c2ac0b5a2c1"`-like."""
    digest = hashlib.sha1(clean(title).casefold().encode()).hexdigest()[:12]
    return f"t-{digest}" if version == 1 else f"t-{digest}-v{version}"


def content_hash(paper: Paper) -> str:
    """Hash of what gets embedded; a change means the paper's chunks must be rebuilt."""
    return hashlib.sha1(f"{paper.title}\n{paper.abstract}".encode()).hexdigest()


def _lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) for each line of a file, read one line at a time.

    `problem` is None for a good line. For a line that is not UTF-8 or is too long it says
    why, and `text` is only a best-effort decoding that readers use to keep their place.
    """
    with path.open("rb") as fh:
        lineno = 0
        while raw := fh.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                size = len(raw)
                while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    size += len(rest)
                size += len(rest)
                yield lineno, "", f"line of {size:,} bytes is longer than the {MAX_LINE_BYTES:,} limit"
                continue
            encoding = "utf-8-sig" if lineno == 1 else "utf-8"
            try:
                yield lineno, raw.decode(encoding).rstrip("\r\n"), None
            except UnicodeDecodeError as err:
                text = raw.decode(encoding, errors="replace").rstrip("\r\n")
                yield lineno, text, (f"not UTF-8 ({err.reason}: byte 0x{raw[err.start]:02x} at column "
                                     f"{err.start + 1}); save the file as UTF-8")


def _is_chrome(line: str) -> bool:
    low = line.casefold()
    return low in _CHROME or bool(_DATE.match(line))


_SENTENCE_BREAK = re.compile(r"[a-z]{3}\. [A-Z]")  # "...images. We", not "vs. Convolution"


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
    for lineno, line, problem in _lines(path):
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


def read_jsonl(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Objects of a JSON Lines file; bad JSON and non-object lines are reported."""
    for lineno, line, problem in _lines(path):
        if problem:
            skipped.append(Skipped(path.name, lineno, problem))
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            hint = "; a JSON array? write one object per line" if lineno == 1 and line.lstrip()[:1] == "[" else ""
            skipped.append(Skipped(path.name, lineno, f"bad JSON ({err.msg} at column {err.colno}){hint}"))
            continue
        if not isinstance(obj, dict):
            kind = "array" if isinstance(obj, list) else type(obj).__name__
            hint = "; write one object per line" if isinstance(obj, list) else ""
            skipped.append(Skipped(path.name, lineno, f"a JSON {kind}, not an object{hint}"))
            continue
        yield lineno, obj


def read_csv(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file with a header row, each reported at its first line. Under a header
    without title/abstract columns every row is a skipped record."""
    consumed: list[tuple[int, str | None]] = []  # (line, problem) the parser took for this row

    def feed() -> Iterator[str]:
        for lineno, text, problem in _lines(path):
            if text.strip() or problem:
                consumed.append((lineno, problem))
            yield text + "\n"

    reader = csv.reader(feed())
    header: list[str] | None = None
    header_problem = ""
    while True:
        try:
            row: list[str] | None = next(reader)
            error = None
        except StopIteration:
            return
        except csv.Error as err:
            row, error = None, f"bad CSV row ({err})"
        lines, consumed[:] = list(consumed), []
        if not lines:
            continue  # a blank line
        lineno = lines[0][0]
        error = next((p for _, p in lines if p), None) or error
        if header is None:
            header = [h.strip().lower() for h in row or []]
            missing = {"title", "abstract"} - set(header)
            if error:
                header_problem = f"the CSV header row is unreadable: {error}"
            elif missing:
                header_problem = f"the CSV header has no {' or '.join(sorted(missing))} column"
            continue
        if error or header_problem:
            skipped.append(Skipped(path.name, lineno, error or header_problem))
        elif row is not None and len(row) > len(header):
            skipped.append(Skipped(path.name, lineno, f"{len(row)} fields but the header has {len(header)}"))
        elif row:
            yield lineno, {k: v for k, v in zip(header, row) if k}


_ARXIV_NEW = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}(v\d+)?$")  # 0704.0001, 2101.00001v2
_ARXIV_OLD = re.compile(r"^[a-z-]+(\.[A-Z]{2})?/(\d{2})\d{5}(v\d+)?$")  # hep-th/9901001


def _year(value: object) -> int | None:
    match = re.search(r"(19|20)\d\d", str(value or ""))
    return int(match.group(0)) if match else None


def arxiv_year(record: dict) -> int | None:
    """Year of first submission: the first version's date, else the id, else update_date.

    `arxiv_year({"id": "2103.15808", "update_date": "2021-03-30"})` -> 2021;
    `arxiv_year({"id": "hep-th/9901001"})` -> 1999.
    """
    versions = record.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        if year := _year(versions[0].get("created")):
            return year
    raw = str(record.get("id") or "").strip()
    if m := _ARXIV_NEW.match(raw):
        return 2000 + int(m.group(1))
    if m := _ARXIV_OLD.match(raw):
        yy = int(m.group(2))
        return 1900 + yy if yy >= 91 else 2000 + yy
    return _year(record.get("update_date"))


def to_paper(record: dict, source: str) -> Paper | str:
    """A `Paper` from a loose record, or the reason it cannot be one."""
    for key in ("title", "abstract"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} is a {type(record[key]).__name__}, not text"
    title = clean(record.get("title") or "")
    abstract = clean(record.get("abstract") or "")
    if not title:
        return "missing title"
    if len(title) > MAX_TITLE_CHARS:
        return f"title is {len(title):,} characters, longer than the {MAX_TITLE_CHARS} limit"
    if not abstract:
        return "missing abstract"
    if len(abstract) < MIN_ABSTRACT_CHARS:
        return f"abstract is {len(abstract)} characters, shorter than the {MIN_ABSTRACT_CHARS} minimum"
    if len(abstract) > MAX_ABSTRACT_CHARS:
        return (f"abstract is {len(abstract):,} characters, longer than the {MAX_ABSTRACT_CHARS:,} limit "
                "(a full text? only abstracts are indexed)")
    authors = record.get("authors")
    if isinstance(authors, list):
        authors = ", ".join(str(a) for a in authors)
    raw_id = clean(str(record.get("id") or ""))
    is_arxiv = bool(raw_id) and ("update_date" in record or "categories" in record)
    if is_arxiv:
        paper_id, url = f"arxiv:{raw_id}", f"https://arxiv.org/abs/{raw_id}"
        year = _year(record.get("year")) or arxiv_year(record)
    else:
        paper_id = f"id:{raw_id}" if raw_id else ""
        url = clean(str(record.get("url") or "")) or None
        year = _year(record.get("year"))
    return Paper(
        paper_id=paper_id, title=title, abstract=abstract,
        authors=clean(str(authors)) if authors else None, year=year, url=url, source=source,
    )


_READERS = {".txt": read_daily_papers, ".jsonl": read_jsonl, ".json": read_jsonl, ".csv": read_csv}


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """The supported files under `paths` (directories are walked), sorted for stable ids."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such corpus file or directory: {path}")
    return files


class PaperStream:
    """Papers of many files, deduplicated, with a running report.

    Exact duplicates (same title and abstract) are merged. The same title with a different
    abstract becomes a second paper with a `-v2` id, so two versions of a paper both stay.
    Records without an `id` are keyed by title (`paper_id_for`). A record whose explicit `id`
    was already read with other content is skipped (the first one wins), since one id cannot
    hold two papers. Counts: records = read + skipped records, read = yielded + duplicates.
    """

    def __init__(self, paths: Iterable[Path]):
        self.files = corpus_files(paths)
        self.skipped: list[Skipped] = []
        self.read = 0  # records that parsed into a Paper (before duplicate merging)
        self.duplicates = 0
        self._seen: dict[str, tuple[str, str]] = {}  # explicit paper_id -> (content hash, where)
        self._versions: dict[str, list[str]] = {}  # title key -> content hashes, in order

    def _identify(self, paper: Paper, where: str) -> tuple[Paper, str]:
        """(paper with its id, "new" | "duplicate" | the reason it conflicts)."""
        digest = content_hash(paper)
        if paper.paper_id:
            known = self._seen.get(paper.paper_id)
            if known is None:
                self._seen[paper.paper_id] = (digest, where)
                return paper, "new"
            if known[0] == digest:
                return paper, "duplicate"
            return paper, f"id {paper.paper_id[3:]!r} was already read with other content at {known[1]}"
        hashes = self._versions.setdefault(clean(paper.title).casefold(), [])
        if digest in hashes:
            return replace(paper, paper_id=paper_id_for(paper.title, hashes.index(digest) + 1)), "duplicate"
        hashes.append(digest)
        return replace(paper, paper_id=paper_id_for(paper.title, len(hashes))), "new"

    def __iter__(self) -> Iterator[Paper]:
        for path in self.files:
            reader = _READERS.get(path.suffix.lower())
            if reader is None:
                self.skipped.append(Skipped(path.name, 0, f"unsupported file type {path.suffix!r}"))
                continue
            before = (self.read, len(self.skipped))
            try:
                for lineno, record in reader(path, self.skipped):
                    paper = to_paper(record, path.name)
                    if isinstance(paper, str):
                        self.skipped.append(Skipped(path.name, lineno, paper))
                        continue
                    paper, status = self._identify(paper, f"{path.name}:{lineno}")
                    if status not in ("new", "duplicate"):
                        self.skipped.append(Skipped(path.name, lineno, status))
                        continue
                    self.read += 1
                    if status == "duplicate":
                        self.duplicates += 1
                        continue
                    yield paper
            except OSError as err:
                self.skipped.append(Skipped(path.name, 0, f"cannot read the file ({err.strerror or err})"))
                continue
            if (self.read, len(self.skipped)) == before:
                with path.open("rb") as fh:
                    empty = not fh.read(4096).strip()
                self.skipped.append(Skipped(path.name, 0, "empty file" if empty else "no records found"))

    @property
    def skipped_records(self) -> int:
        """Skipped entries that stand for a record (file-level entries excluded)."""
        return sum(1 for s in self.skipped if s.line > 0)


def load_papers(paths: Iterable[Path]) -> tuple[list[Paper], PaperStream]:
    """All distinct papers of `paths` in memory (fine for small corpora) and the report."""
    stream = PaperStream(paths)
    return list(stream), stream
