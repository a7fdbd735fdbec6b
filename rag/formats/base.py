"""What every reader shares: the `Skipped` report entry, opening a file (gzip or plain) as a
byte stream, and reading it line by line with a length limit and UTF-8 checks.

A reader is `reader(path, skipped) -> Iterator[(position, record dict)]`: it yields loose
records (`title`, `abstract`, optional `authors`, `year`, `url`, `id`, `venue`, `doi`) and
appends a `Skipped` for each record it cannot parse. Turning a record into a `Paper` (and
refusing bad ones) is `records.to_paper`'s job, not the reader's.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_LINE_BYTES = 8 * 1024 * 1024  # a longer line is skipped, read at most this much at a time


class RecordNumber(int):
    """A position counted in records (1 = the first), for formats without useful line
    numbers (a JSON document read by ijson). A plain `int` position is a line number."""


@dataclass(frozen=True)
class Skipped:
    """A record that was not ingested, and why (line 0: the whole file, or a path of a
    directory walk, standing for no record). `unit` is "line", or "record" for a JSON
    document, where the position is the record's number in the list."""

    file: str
    line: int
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        if self.unit == "record":
            return f"{self.file} record {self.line}: {self.reason}"
        return f"{self.file}:{self.line}: {self.reason}"


MAX_SKIPPED_KEPT = 1000  # skipped records kept with their reason; the rest are only counted


class SkipLog(list):
    """The skipped entries of a read, bounded: every entry about a whole file (line 0) is
    kept, and the first `keep` records; later records are only counted (`omitted`), so a
    file of millions of bad records costs two counters, not gigabytes of reasons.
    `records` counts every record entry, kept or not; `total` every entry."""

    def __init__(self, entries=(), keep: int = MAX_SKIPPED_KEPT):
        super().__init__()
        self.keep = keep
        self.records = 0
        self.omitted = 0
        self.extend(entries)

    def append(self, entry: Skipped) -> None:
        if entry.line > 0:
            self.records += 1
            if self.records > self.keep:
                self.omitted += 1
                return
        super().append(entry)

    def extend(self, entries) -> None:
        for entry in entries:
            self.append(entry)

    @property
    def total(self) -> int:
        return len(self) + self.omitted


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes as a stream; a `.gz` file is decompressed as it is read (never whole).
    A `.gz` that is not gzip raises `gzip.BadGzipFile` (an OSError) on the first read, a
    truncated one `EOFError` where it ends."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def holds_more_than(path: Path, limit: int) -> bool:
    """Whether a file holds more than `limit` bytes as its reader sees them: a `.gz` is
    decompressed as a stream, 1 MiB at a time, and stopped at the limit, so a gzip bomb (a
    1 MB file inflating to gigabytes) costs a moment and no memory. Raises what reading
    the file raises (`open_binary`)."""
    if not is_gzip(path):
        return path.stat().st_size > limit
    size = 0
    with open_binary(path) as fh:
        while chunk := fh.read(1 << 20):
            size += len(chunk)
            if size > limit:
                return True
    return False


def read_lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) for each line of a file, read one line at a time.

    `problem` is None for a good line. For a line that is not UTF-8 or is too long it says
    why, and `text` is only a best-effort decoding that readers use to keep their place.
    """
    with open_binary(path) as fh:
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
