"""How many records a set of corpus files holds, counted cheaply before an ingest so a
progress bar has a real total and ETA.

JSON Lines and CSV are counted by lines (no parsing: a multi-gigabyte snapshot takes
seconds; a CSV field spanning lines makes it an overestimate), `.gz` through the same
stream; a JSON document by its records (ijson, in C); the small formats (`.txt`, `.bib`,
`.ris`) by reading them. Nothing is reported: the ingest itself reports every file.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from pathlib import Path

import ijson

from rag.formats import file_type, reader_for
from rag.formats.base import SkipLog, open_binary
from rag.formats.jsonfile import _records_prefix, is_json_lines


def _lines(path: Path) -> int:
    with open_binary(path) as fh:
        return sum(1 for line in fh if line.strip())


def count_file(path: Path) -> int | None:
    """The number of records in one file, None when it is not a corpus format."""
    kind = file_type(path).removesuffix(".gz")
    if kind == ".jsonl" or (kind == ".json" and is_json_lines(path)):
        return _lines(path)
    if kind in (".csv", ".tsv"):
        return max(_lines(path) - 1, 0)
    if kind == ".json":
        prefix = _records_prefix(path)
        if prefix is None:
            return 0
        with open_binary(path) as fh:
            return sum(1 for _ in ijson.items(fh, prefix))
    reader = reader_for(path)
    return None if reader is None else sum(1 for _ in reader(path, SkipLog(keep=0)))  # reasons unkept


def count_records(files: Iterable[Path]) -> int | None:
    """The records in `files` (`PaperStream(paths).files`), or None when one of them cannot
    be counted (an unsupported, unreadable or broken file)."""
    total = 0
    for path in files:
        try:
            n = count_file(path)
        except (OSError, EOFError, zlib.error, ValueError, ijson.JSONError, gzip.BadGzipFile):
            return None
        if n is None:
            return None
        total += n
    return total
