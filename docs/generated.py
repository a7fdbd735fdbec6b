"""Writing or checking a generated file: the one step `docs.figures` and `docs.settings_doc` share."""

from __future__ import annotations

import sys
from pathlib import Path


def sync(path: Path, have: str, wanted: str, check: bool, command: str, what: str) -> int:
    """With `check`, 1 (and a line saying to run `command`) when `have` is not `wanted`;
    otherwise write `wanted` to `path` when it differs. Returns the exit status."""
    if check:
        if have != wanted:
            print(f"{what} is out of date: run `{command}`", file=sys.stderr)
            return 1
        return 0
    if have != wanted:
        path.write_text(wanted, encoding="utf-8")
        print(f"{what} rewritten")
    return 0
