"""Read paper files into `Paper` records, streaming, reporting every bad record.

Formats (picked by extension, then by content):
- `.txt`: the Daily Papers page exports bundled in data/corpus (both layouts);
- `.jsonl` / `.json`: one object per line with `title` and `abstract` (optional `id`,
  `authors`, `year`, `url`); objects that look like the arXiv metadata snapshot (`id`,
  `update_date`, `categories`) get arXiv ids, years and links;
- `.csv`: a header row with `title` and `abstract` columns and any optional ones.

Every reader is a generator over lines, so a multi-gigabyte snapshot never sits in memory.
A record that cannot be used becomes a `Skipped` (file, line, reason) and reading goes on.
This module does not deduplicate across files; `PaperStream` does that for ingestion.
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
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Skipped:
    """A record that was not ingested, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def clean(text: str) -> str:
    """Collapse whitespace: `clean(" a\\n  b ")` -> `"a b"`."""
    return _WS.sub(" ", text).strip()


def paper_id_for(title: str, version: int = 1) -> str:
    """Stable id for a paper known only by its title; a second, different abstract under the
    same title is version 2. `paper_id_for("Attention Is All You Need")` -> `"t-6c2ac0b5a2c1"`-like."""
    digest = hashlib.sha1(clean(title).casefold().encode()).hexdigest()[:12]
    return f"t-{digest}" if version == 1 else f"t-{digest}-v{version}"


def content_hash(paper: Paper) -> str:
    """Hash of what gets embedded; a change means the paper's chunks must be rebuilt."""
    return hashlib.sha1(f"{paper.title}\n{paper.abstract}".encode()).hexdigest()


def _decoded_lines(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line; undecodable lines are reported and left out."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                skipped.append(Skipped(path.name, lineno, f"undecodable bytes ({err.reason} at byte {err.start})"))
                continue
            yield lineno, text.rstrip("\r\n")


def _is_chrome(line: str) -> bool:
    low = line.casefold()
    return low in _CHROME or bool(_DATE.match(line))


def read_daily_papers(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Title/abstract pairs of a Daily Papers export, in either layout.

    Blank lines carry no meaning (000/001 separate everything with them, 002/003 don't), so the
    non-blank, non-chrome lines alternate title, abstract. A title never reaches
    MIN_ABSTRACT_CHARS-long prose, so a "title" followed by another short line means the
    abstract is missing: that title is reported and the short line starts the next pair.
    """
    pending: tuple[int, str] | None = None
    for lineno, line in _decoded_lines(path, skipped):
        line = line.strip()
        if line.startswith("Subscribe") and len(line) > len("Subscribe"):
            line = line[len("Subscribe"):].strip()  # the first title is glued to the chrome
        if not line or _is_chrome(line):
            continue
        if pending is None:
            pending = (lineno, line)
            continue
        title_line, title = pending
        if len(line) < MIN_ABSTRACT_CHARS:
            skipped.append(Skipped(path.name, title_line, f"no abstract after title {title[:60]!r}"))
            pending = (lineno, line)
            continue
        yield title_line, {"title": title, "abstract": line}
        pending = None
    if pending is not None:
        skipped.append(Skipped(path.name, pending[0], f"no abstract after title {pending[1][:60]!r}"))


def read_jsonl(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Objects of a JSON Lines file; bad JSON and non-object lines are reported."""
    for lineno, line in _decoded_lines(path, skipped):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            skipped.append(Skipped(path.name, lineno, f"bad JSON ({err.msg})"))
            continue
        if not isinstance(obj, dict):
            skipped.append(Skipped(path.name, lineno, "not a JSON object"))
            continue
        yield lineno, obj


def read_csv(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file with a header; a header without title/abstract skips the file."""
    lines = (text + "\n" for _, text in _decoded_lines(path, skipped))
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames or []
    except csv.Error as err:
        skipped.append(Skipped(path.name, 1, f"bad CSV header ({err})"))
        return
    missing = {"title", "abstract"} - {h.strip().lower() for h in header}
    if missing:
        skipped.append(Skipped(path.name, 1, f"CSV header lacks column(s) {', '.join(sorted(missing))}"))
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            skipped.append(Skipped(path.name, reader.line_num, f"bad CSV row ({err})"))
            continue
        yield reader.line_num, {k.strip().lower(): v for k, v in row.items() if k}


def _year(value: object) -> int | None:
    match = re.search(r"(19|20)\d\d", str(value or ""))
    return int(match.group(0)) if match else None


def to_paper(record: dict, source: str) -> Paper | str:
    """A `Paper` from a loose record, or the reason it cannot be one."""
    title = clean(str(record.get("title") or ""))
    abstract = clean(str(record.get("abstract") or ""))
    if not title:
        return "missing title"
    if len(title) > MAX_TITLE_CHARS:
        return f"title longer than {MAX_TITLE_CHARS} characters"
    if not abstract:
        return "missing abstract"
    if len(abstract) < MIN_ABSTRACT_CHARS:
        return f"abstract shorter than {MIN_ABSTRACT_CHARS} characters"
    authors = record.get("authors")
    if isinstance(authors, list):
        authors = ", ".join(str(a) for a in authors)
    raw_id = clean(str(record.get("id") or ""))
    is_arxiv = bool(raw_id) and ("update_date" in record or "categories" in record)
    if is_arxiv:
        paper_id, url = f"arxiv:{raw_id}", f"https://arxiv.org/abs/{raw_id}"
        year = _year(record.get("year") or record.get("update_date"))
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
    Records without an `id` are keyed by title (`paper_id_for`).
    """

    def __init__(self, paths: Iterable[Path]):
        self.files = corpus_files(paths)
        self.skipped: list[Skipped] = []
        self.read = 0  # records that parsed into a Paper (before duplicate merging)
        self.duplicates = 0
        self._seen: dict[str, str] = {}  # paper_id -> content hash
        self._versions: dict[str, list[str]] = {}  # title key -> content hashes, in order

    def _identify(self, paper: Paper) -> tuple[Paper, bool]:
        digest = content_hash(paper)
        if paper.paper_id:
            known = self._seen.get(paper.paper_id)
            self._seen[paper.paper_id] = digest
            return paper, known == digest
        hashes = self._versions.setdefault(clean(paper.title).casefold(), [])
        if digest in hashes:
            return replace(paper, paper_id=paper_id_for(paper.title, hashes.index(digest) + 1)), True
        hashes.append(digest)
        return replace(paper, paper_id=paper_id_for(paper.title, len(hashes))), False

    def __iter__(self) -> Iterator[Paper]:
        for path in self.files:
            reader = _READERS.get(path.suffix.lower())
            if reader is None:
                self.skipped.append(Skipped(path.name, 0, f"unsupported file type {path.suffix!r}"))
                continue
            try:
                for lineno, record in reader(path, self.skipped):
                    paper = to_paper(record, path.name)
                    if isinstance(paper, str):
                        self.skipped.append(Skipped(path.name, lineno, paper))
                        continue
                    self.read += 1
                    paper, duplicate = self._identify(paper)
                    if duplicate:
                        self.duplicates += 1
                        continue
                    yield paper
            except OSError as err:
                self.skipped.append(Skipped(path.name, 0, f"cannot read file ({err.strerror or err})"))


def load_papers(paths: Iterable[Path]) -> tuple[list[Paper], PaperStream]:
    """All distinct papers of `paths` in memory (fine for small corpora) and the report."""
    stream = PaperStream(paths)
    return list(stream), stream
