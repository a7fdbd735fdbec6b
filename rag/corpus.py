"""Read paper files into `Paper` records, streaming, reporting every bad record.

The formats, one reader each, live in `rag.formats` (picked by extension, `.gz` of each
read as a stream): Daily Papers `.txt`, `.jsonl`, `.json` (lines or one document), `.csv`
/ `.tsv` (delimiter sniffed), `.bib`, `.ris`. This module walks the given paths (symlinked
directories followed, loops reported), runs the readers, turns records into papers, and
deduplicates across files (`PaperStream`).

A record that cannot be used becomes a `Skipped` (file, line, reason) and reading goes on:
one entry per record, so for every file `records = read + skipped`. Entries with line 0 are
about a whole file or a path of the walk (empty, unreadable, unsupported type, a symlink
loop) and stand for no record. Files must be UTF-8: a line that is not is reported with the
offending byte rather than guessed at. Every text field is normalised (`rag.clean`).
This module does not touch the store.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from rag.formats import READERS, SUPPORTED_SUFFIXES, file_type, is_candidate, reader_for
from rag.formats.base import MAX_LINE_BYTES, RecordNumber, SkipLog, Skipped, holds_more_than, open_binary
from rag.formats.csvfile import read_csv
from rag.formats.daily import read_daily_papers
from rag.formats.jsonfile import read_json, read_jsonl
from rag.formats.records import (
    MAX_ABSTRACT_CHARS,
    MAX_TITLE_CHARS,
    MIN_ABSTRACT_CHARS,
    arxiv_year,
    clean,
    normal,
    to_paper,
)
from rag.formats.walk import walk
from rag.models import Paper

__all__ = [
    "MAX_ABSTRACT_CHARS", "MAX_LINE_BYTES", "MAX_TITLE_CHARS", "MIN_ABSTRACT_CHARS", "SUPPORTED_SUFFIXES",
    "PaperStream", "Skipped", "arxiv_year", "clean", "content_hash", "corpus_files", "load_papers",
    "paper_id_for", "read_csv", "read_daily_papers", "read_json", "read_jsonl", "to_paper",
]

# Old name, kept for callers that pick a reader by `path.suffix` (no `.gz` there: use
# `rag.formats.reader_for`).
_READERS = READERS


def paper_id_for(title: str, version: int = 1) -> str:
    """Stable id for a paper known only by its title; a second, different abstract under the
    same title is version 2. Titles are compared as indexed (`normal`: invisible characters
    dropped, NFC, whitespace collapsed) and without case.
    `paper_id_for("Attention Is All You Need")` -> `"t-6c2ac0b5a2c1"`-like."""
    digest = hashlib.sha1(normal(title).casefold().encode()).hexdigest()[:12]
    return f"t-{digest}" if version == 1 else f"t-{digest}-v{version}"


def content_hash(paper: Paper) -> str:
    """Hash of what gets embedded; a change means the paper's chunks must be rebuilt."""
    return hashlib.sha1(f"{paper.title}\n{paper.abstract}".encode()).hexdigest()


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """The supported files under `paths` (directories are walked), sorted for stable ids.
    What the walk passed over is in `PaperStream(paths).skipped`."""
    return walk(paths, is_candidate)[0]


class PaperStream:
    """Papers of many files, deduplicated, with a running report.

    Exact duplicates (same title and abstract) are merged. The same title with a different
    abstract becomes a second paper with a `-v2` id, so two versions of a paper both stay.
    Records without an `id` are keyed by title (`paper_id_for`). A record whose explicit `id`
    was already read with other content is skipped (the first one wins), since one id cannot
    hold two papers. Counts: records = read + skipped records, read = yielded + duplicates.

    `max_bytes`: the most a file may hold once decompressed (an upload's limit); a file over
    it is refused whole, before any of its records is read. None: no limit (`rag ingest` of
    a user's own files, such as a multi-gigabyte arXiv snapshot).
    """

    def __init__(self, paths: Iterable[Path], max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.files, notes = walk(paths, is_candidate)
        self.skipped = SkipLog(notes)  # the walk's notes first: symlinks, loops; records bounded
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
        hashes = self._versions.setdefault(paper.title.casefold(), [])
        if digest in hashes:
            return replace(paper, paper_id=paper_id_for(paper.title, hashes.index(digest) + 1)), "duplicate"
        hashes.append(digest)
        return replace(paper, paper_id=paper_id_for(paper.title, len(hashes))), "new"

    def _file(self, path: Path) -> Iterator[Paper]:
        reader = reader_for(path)
        if reader is None:
            self.skipped.append(Skipped(path.name, 0, f"unsupported file type {file_type(path)!r}"))
            return
        if self.max_bytes is not None and holds_more_than(path, self.max_bytes):
            self.skipped.append(Skipped(path.name, 0, f"holds more than {self.max_bytes:,} bytes once decompressed, "
                                        "the upload limit (RAG_UI_MAX_UPLOAD_BYTES); nothing of it was read"))
            return
        for pos, record in reader(path, self.skipped):
            unit = "record" if isinstance(pos, RecordNumber) else "line"
            paper = to_paper(record, path.name)
            if isinstance(paper, str):
                label = record.get("_label")  # a BibTeX key or RIS type and title: findable in the file
                self.skipped.append(Skipped(path.name, pos, f"{paper} ({label})" if label else paper, unit))
                continue
            paper, status = self._identify(paper, f"{path.name}:{pos}")
            if status not in ("new", "duplicate"):
                self.skipped.append(Skipped(path.name, pos, status, unit))
                continue
            self.read += 1
            if status == "duplicate":
                self.duplicates += 1
                continue
            yield paper

    def __iter__(self) -> Iterator[Paper]:
        for path in self.files:
            before = (self.read, self.skipped.total)
            try:
                yield from self._file(path)
            except gzip.BadGzipFile as err:
                if str(err).startswith("Not a gzipped file"):
                    self.skipped.append(Skipped(path.name, 0, f"not a gzip file ({err}); rename it without .gz"))
                else:  # a CRC or length check at the end
                    self.skipped.append(Skipped(path.name, 0, f"the compressed data is damaged ({err}); the "
                                                "records before the damage were read"))
                continue
            except zlib.error as err:
                self.skipped.append(Skipped(path.name, 0, f"the compressed data is damaged ({err}); the records "
                                            "before the damage were read"))
                continue
            except EOFError:
                self.skipped.append(Skipped(path.name, 0, "the compressed file is truncated; the records "
                                            "before the cut were read"))
                continue
            except OSError as err:
                self.skipped.append(Skipped(path.name, 0, f"cannot read the file ({err.strerror or err})"))
                continue
            except RecursionError:  # a reader's parser on input nested past any record's depth
                self.skipped.append(Skipped(path.name, 0, "nested too deeply to be a paper file; the records "
                                            "before it were read"))
                continue
            if (self.read, self.skipped.total) == before:
                with open_binary(path) as fh:
                    empty = not fh.read(4096).strip()
                self.skipped.append(Skipped(path.name, 0, "empty file" if empty else "no records found"))

    @property
    def skipped_records(self) -> int:
        """Skipped entries that stand for a record (file-level entries excluded), kept or not."""
        return self.skipped.records


def load_papers(paths: Iterable[Path]) -> tuple[list[Paper], PaperStream]:
    """All distinct papers of `paths` in memory (fine for small corpora) and the report."""
    stream = PaperStream(paths)
    return list(stream), stream
