"""How far a running ingest has got, for other processes to show (the UI's header).

`rag ingest` commits batch by batch and open indexes reload after each one, so a UI started
beside an ingest serves what is committed while the rest is embedded. This module is the only
channel between them: the ingest writes `ingest-status.json` in the data directory after each
batch (papers done, papers in all, its pid) and removes it when it ends; a reader gets an
`IngestStatus` only while that pid is alive, so an ingest killed part-way leaves no
"indexing…" behind. Written to a temporary file and renamed, so a reader never sees half.

`read(data_dir)` -> `IngestStatus(done=256, total=555, pid=4242)` while an ingest runs, else None.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE = "ingest-status.json"


@dataclass(frozen=True)
class IngestStatus:
    done: int  # records read and committed so far
    total: int | None  # records in the input (None: not countable up front)
    pid: int

    @property
    def line(self) -> str:
        """`"indexing: 256 of 555 papers"`."""
        return f"indexing: {self.done:,} of {self.total:,} papers" if self.total else f"indexing: {self.done:,} papers"


def write(data_dir: Path, done: int, total: int | None) -> None:
    """Record this process's progress; an unwritable directory is not the ingest's failure."""
    path = Path(data_dir) / FILE
    tmp = path.with_name(f".{FILE}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps(asdict(IngestStatus(done, total, os.getpid()))))
        os.replace(tmp, path)
    except OSError:
        pass


def clear(data_dir: Path) -> None:
    """Remove the record, if it is this process's."""
    status = _load(Path(data_dir) / FILE)
    if status is not None and status.pid == os.getpid():
        (Path(data_dir) / FILE).unlink(missing_ok=True)


def read(data_dir: Path) -> IngestStatus | None:
    """The progress of an ingest that is running now, else None."""
    status = _load(Path(data_dir) / FILE)
    if status is None or not _alive(status.pid):
        return None
    return status


def _load(path: Path) -> IngestStatus | None:
    try:
        data = json.loads(path.read_text())
        return IngestStatus(int(data["done"]), None if data["total"] is None else int(data["total"]),
                            int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
