"""The corpus files under the paths a user gives: directories walked (symlinked
sub-directories followed), with a note for everything skipped on the way and why.

Followed symlinks are guarded: a directory (or file) already reached by another path is not
walked (read) again, and a link back to a directory being walked is reported as a loop. A
broken link and an unreadable directory are reported. Files of types that are not corpus
formats (README.md, PDFs) are not listed, as before; a `.gz` of any inner type is listed,
so that one whose type is not supported is reported rather than silently passed over.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from rag.formats.base import Skipped


def walk(paths: Iterable[Path], wanted: Callable[[Path], bool]) -> tuple[list[Path], list[Skipped]]:
    """(files, notes): the files under `paths` that `wanted` accepts, each directory's sorted
    for stable ids, and a line-0 `Skipped` for each link or directory passed over. A path
    given directly is listed whatever its type; a missing one raises FileNotFoundError."""
    files: list[Path] = []
    notes: list[Skipped] = []
    for path in map(Path, paths):
        if path.is_dir():
            found: list[Path] = []
            _walk_dir(path, path.parent, wanted, found, notes, seen_dirs={}, seen_files={}, ancestors=())
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such corpus file or directory: {path}")
    return files, notes


def _walk_dir(directory: Path, base: Path, wanted, found: list[Path], notes: list[Skipped],
              seen_dirs: dict[str, str], seen_files: dict[str, str], ancestors: tuple[str, ...]) -> None:
    label = _label(directory, base)
    real = os.path.realpath(directory)
    seen_dirs[real] = label
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as err:
        notes.append(Skipped(label, 0, f"cannot read the directory ({err.strerror or err})"))
        return
    for entry in entries:
        path = Path(entry.path)
        here = _label(path, base)
        if entry.is_symlink() and not path.exists():
            notes.append(Skipped(here, 0, f"a broken symlink (to {os.readlink(path)})"))
            continue
        if entry.is_dir():  # follows symlinks
            target = os.path.realpath(path)
            if target in ancestors or target == real:
                notes.append(Skipped(here, 0, f"a symlink loop (back to {seen_dirs[target]}), not walked again"))
            elif target in seen_dirs:
                notes.append(Skipped(here, 0, f"the same directory as {seen_dirs[target]} (a symlink), walked once"))
            else:
                _walk_dir(path, base, wanted, found, notes, seen_dirs, seen_files, (*ancestors, real))
        elif entry.is_file() and wanted(path):
            target = os.path.realpath(path)
            if target in seen_files:
                notes.append(Skipped(here, 0, f"the same file as {seen_files[target]} (a symlink), read once"))
                continue
            seen_files[target] = here
            found.append(path)


def _label(path: Path, base: Path) -> str:
    """How a path is named in the report: from the given directory's name down."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()
