"""CSV files with a header row naming `title` and `abstract` columns (any case, any order,
other columns optional). The delimiter (`,` `;` tab `|`) is sniffed from a sample; quoting is
the standard double-quote kind whatever the sniffer guesses, as spreadsheets write it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from rag.formats.base import Skipped, open_binary, read_lines

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"


def _header_columns(line: str, delimiter: str) -> set[str]:
    row = next(csv.reader([line], delimiter=delimiter), [])
    return {h.strip().lower() for h in row}


def sniff_delimiter(path: Path) -> str:
    """The delimiter of a CSV file, from its first 64 kB.

    The header row decides when exactly one delimiter splits it into `title` and `abstract`
    columns (a `;` inside a quoted abstract cannot fool that); else csv.Sniffer's guess;
    else `,` (whose "no title column" report then says what is wrong).
    """
    with open_binary(path) as fh:
        sample = fh.read(SAMPLE_BYTES).decode("utf-8-sig", errors="replace")
    if path.name.lower().removesuffix(".gz").endswith(".tsv"):
        return "\t"
    header = next((line for line in sample.splitlines() if line.strip()), "")
    if header.lower().startswith("sep=") and len(header.strip()) == 5:
        return header.strip()[4]  # Excel's "sep=;" first line names the delimiter
    fits = [d for d in DELIMITERS if {"title", "abstract"} <= _header_columns(header, d)]
    if len(fits) == 1:
        return fits[0]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_csv(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file with a header row, each reported at its first line. Under a header
    without title/abstract columns every row is a skipped record."""
    consumed: list[tuple[int, str | None]] = []  # (line, problem) the parser took for this row

    def feed() -> Iterator[str]:
        for lineno, text, problem in read_lines(path):
            if text.strip() or problem:
                consumed.append((lineno, problem))
            yield text + "\n"

    reader = csv.reader(feed(), delimiter=sniff_delimiter(path))
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
            if row and row[0].lower().startswith("sep=") and not error:
                continue  # Excel's delimiter line, read by sniff_delimiter
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


