"""One reader per corpus file format, picked by the file's extension (under any `.gz`).

| extension | reader |
|---|---|
| `.txt` | `daily.read_daily_papers`: Daily Papers page exports |
| `.jsonl` | `jsonfile.read_jsonl`: one JSON object per line |
| `.json` | `jsonfile.read_json`: JSON Lines, or one document (array / `{"papers": [...]}`) via ijson |
| `.csv`, `.tsv` | `csvfile.read_csv`: a header row; delimiter sniffed |
| `.bib` | `bibtex.read_bibtex`: BibTeX via bibtexparser 2, LaTeX to text |
| `.ris` | `ris.read_ris`: RIS via rispy |

Every reader also reads the `.gz` of its format, decompressing as it streams. Readers yield
loose records; `records.to_paper` makes `Paper`s of them; `rag.corpus` ties it together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rag.formats.base import Skipped, is_gzip
from rag.formats.bibtex import read_bibtex
from rag.formats.csvfile import read_csv
from rag.formats.daily import read_daily_papers
from rag.formats.jsonfile import read_json, read_jsonl
from rag.formats.ris import read_ris

Reader = Callable[[Path, list[Skipped]], Iterator[tuple[int, dict]]]

READERS: dict[str, Reader] = {
    ".txt": read_daily_papers, ".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".tsv": read_csv,
    ".bib": read_bibtex, ".ris": read_ris,
}
SUPPORTED_SUFFIXES = set(READERS) | {s + ".gz" for s in READERS}


def file_type(path: Path) -> str:
    """The format-bearing extension: `file_type(Path("a.JSONL.gz"))` -> `".jsonl.gz"`."""
    name = path.name.lower()
    inner = Path(name[:-3]).suffix if is_gzip(path) else path.suffix.lower()
    return inner + ".gz" if is_gzip(path) else inner


def reader_for(path: Path) -> Reader | None:
    """The reader of a file's format, None if it is not one (`.gz` of any of them included)."""
    return READERS.get(file_type(path).removesuffix(".gz"))


def is_candidate(path: Path) -> bool:
    """Whether a file found in a directory is listed: a supported format, or any `.gz` (an
    unsupported one is then reported instead of passed over in silence)."""
    return reader_for(path) is not None or is_gzip(path)
