"""Where each source's file lives, kept beside the index in `data_dir/sources.json`.

Every ingest records the files it read (`remember_paths`); `rag ingest --rebuild` re-reads
every source the index records from there (uploads are files in `data_dir/uploads/`), so a
rebuild never drops a user's papers. It is a per-host list (a path means nothing on another
host) and advisory: a source it does not know is looked for among the uploads, and else the
rebuild refuses. Its own module because both the ingest and the sources panel write it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from rag.settings import Settings


def _paths_file(settings: Settings) -> Path:
    return settings.data_dir / "sources.json"


def recorded_paths(settings: Settings) -> dict[str, Path]:
    """Source name -> the file it was last read from (`remember_paths`); {} when none is
    recorded or the list cannot be read (it is advisory: a rebuild then asks for the file)."""
    try:
        raw = json.loads(_paths_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): Path(v) for k, v in raw.items() if isinstance(v, str)}


def _write_paths(settings: Settings, paths: dict[str, Path]) -> None:
    """Replace the list atomically (a temporary file renamed over it); a failure to write it
    (read-only, full disk) leaves the old list: a later rebuild then asks for the file."""
    target = _paths_file(settings)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        tmp.write_text(json.dumps({k: str(v) for k, v in sorted(paths.items())}, indent=1), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def remember_paths(settings: Settings, paths: dict[str, Path]) -> None:
    """Record where sources were read from (name -> file, made absolute). The caller holds
    the writer lock, as for the store's own source list."""
    if paths:
        _write_paths(settings, {**recorded_paths(settings), **{k: v.resolve() for k, v in paths.items()}})


def forget_paths(settings: Settings, names: list[str]) -> None:
    """Drop sources from the list (after `rag remove`, or a rebuild that dropped them)."""
    known = recorded_paths(settings)
    if any(n in known for n in names):
        _write_paths(settings, {k: v for k, v in known.items() if k not in names})
