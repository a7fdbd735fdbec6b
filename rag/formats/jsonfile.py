"""JSON Lines (`.jsonl`, and `.json` files that hold one object per line, like the arXiv
metadata snapshot) and JSON documents (`.json` holding one array of records, or an object
with a key holding that list, pretty-printed or not), the latter streamed with ijson so a
large export never sits in memory whole.

Which a `.json` file is, is read from its first line: a line that parses on its own as a
record is JSON Lines; anything else (`[`, `{` alone, a one-line `{"papers": [...]}`) is a
document. In a document the first top-level key whose value is an array of objects holds the
records (other keys, such as an export's `version`, are ignored); an object without one is a
single record. Document positions are record numbers (`RecordNumber`), not lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import ijson

from rag.formats.base import MAX_LINE_BYTES, RecordNumber, Skipped, open_binary, read_lines

# Deeper JSON is no paper export: an arXiv record is 3 levels deep, Semantic Scholar's 4.
# Checked before a document is built (`_too_deep`): 100,000 levels took gigabytes to build.
MAX_DEPTH = 64
_TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels; not a paper record"


def read_jsonl(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Objects of a JSON Lines file; bad JSON and non-object lines are reported."""
    for lineno, line, problem in read_lines(path):
        if problem:
            skipped.append(Skipped(path.name, lineno, problem))
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            skipped.append(Skipped(path.name, lineno, _TOO_DEEP))
            continue
        except json.JSONDecodeError as err:
            hint = "; a JSON array? name the file .json" if lineno == 1 and line.lstrip()[:1] == "[" else ""
            skipped.append(Skipped(path.name, lineno, f"bad JSON ({err.msg} at column {err.colno}){hint}"))
            continue
        # (counting brackets is C-speed; only a line with that many can be that deep)
        if line.count("{") + line.count("[") > MAX_DEPTH and _depth(obj) > MAX_DEPTH:
            skipped.append(Skipped(path.name, lineno, _TOO_DEEP))
            continue
        if not isinstance(obj, dict):
            kind = "array" if isinstance(obj, list) else type(obj).__name__
            hint = "; write one object per line or name the file .json" if isinstance(obj, list) else ""
            skipped.append(Skipped(path.name, lineno, f"a JSON {kind}, not an object{hint}"))
            continue
        yield lineno, obj


def _is_wrapper(obj: dict) -> bool:
    """`{"papers": [{...}, ...]}`: no record fields of its own, a list of objects inside."""
    return "title" not in obj and "abstract" not in obj and any(
        isinstance(v, list) and v and isinstance(v[0], dict) for v in obj.values())


def is_json_lines(path: Path) -> bool:
    """Whether a `.json` file is JSON Lines (see the module docstring)."""
    with open_binary(path) as fh:
        while (line := fh.readline(MAX_LINE_BYTES)) and not line.strip():
            pass
    try:
        first = json.loads(line.decode("utf-8-sig"))
    except RecursionError:
        return False  # a deeply nested document: refused by `read_json`
    except (UnicodeDecodeError, json.JSONDecodeError):
        return line.lstrip()[:1] not in (b"[", b"{")  # a broken first line of JSON Lines
    return isinstance(first, dict) and not _is_wrapper(first)


def read_json(path: Path, skipped: list[Skipped]) -> Iterator[tuple[int, dict]]:
    """Records of a `.json` file: JSON Lines or one document (see the module docstring)."""
    if is_json_lines(path):
        yield from read_jsonl(path, skipped)
        return
    n = 0
    try:
        if (where := _too_deep(path)) is not None:
            skipped.append(Skipped(path.name, 0, f"JSON nested deeper than {MAX_DEPTH} levels (at record "
                                   f"{where}); not a paper export, nothing of it was read"))
            return
        prefix = _records_prefix(path)
        if prefix is None:
            return  # an empty document: reported as a file without records
        with open_binary(path) as fh:
            # ijson.items builds each record in C (yajl2_c): four times the Python event loop
            for n, item in enumerate(ijson.items(fh, prefix, use_float=True), start=1):
                if isinstance(item, dict):
                    yield RecordNumber(n), item
                else:
                    kind = "array" if isinstance(item, list) else type(item).__name__
                    skipped.append(Skipped(path.name, n, f"a JSON {kind}, not an object", "record"))
    except ijson.JSONError as err:
        if n == 0 and _second_line_is_a_record(path):  # JSON Lines whose first line is broken
            yield from read_jsonl(path, skipped)
            return
        skipped.append(Skipped(path.name, n + 1, f"bad JSON after record {n} ({err}); the records "
                               "before it were read", "record"))


def _depth(obj, limit: int = 0) -> int:
    """Nesting depth of a parsed JSON value, counted no further than MAX_DEPTH + 1:
    `_depth({"a": [1]})` -> 2. Records are shallow (an arXiv record: 3)."""
    if limit > MAX_DEPTH or not isinstance(obj, (dict, list)):
        return 0
    values = obj.values() if isinstance(obj, dict) else obj
    return 1 + max((_depth(v, limit + 1) for v in values if isinstance(v, (dict, list))), default=0)


def _too_deep(path: Path) -> int | None:
    """The number of the first record (1 = the document's first value) nested deeper than
    MAX_DEPTH, or None. A streaming pass over the parser's events (in C), so a document
    nested 100,000 deep costs a counter, where building it (`ijson.items`) took gigabytes."""
    depth = records = 0
    with open_binary(path) as fh:
        try:
            for event, _ in ijson.basic_parse(fh, use_float=True):
                if event in ("start_map", "start_array"):
                    depth += 1
                    if depth > MAX_DEPTH + 1:  # + 1: the array or object the records are in
                        return max(records, 1)
                elif event in ("end_map", "end_array"):
                    depth -= 1
                    records += depth == 1
        except ijson.JSONError:
            pass  # bad JSON: the reading pass reports it, after the records before it
    return None


def _second_line_is_a_record(path: Path) -> bool:
    with open_binary(path) as fh:
        lines = (line for line in iter(lambda: fh.readline(MAX_LINE_BYTES), b"") if line.strip())
        next(lines, None)
        try:
            return isinstance(json.loads(next(lines, b"")), dict)
        except (ValueError, UnicodeDecodeError):
            return False


def _records_prefix(path: Path) -> str | None:
    """The ijson prefix of the records: `item` for a top-level array, `KEY.item` for the first
    top-level key holding an array of objects, `` (the document itself) for a single record,
    None for an empty file. Reads only up to the records list."""
    with open_binary(path) as fh:
        events = ijson.parse(fh, use_float=True)
        first = next(events, None)
        if first is None:
            return None
        if first[1] != "start_map":
            return "item" if first[1] == "start_array" else ""
        for _, event, key in events:
            if event != "map_key":
                return ""
            start = next(events)
            if start[1] == "start_array":
                head = next(events)
                if head[1] == "end_array":
                    continue
                if head[1] == "start_map" and "." not in key:
                    return f"{key}.item"  # (a key with a dot cannot be an ijson prefix: one record)
                _skip(head, events)
            _skip(start, events)
        return ""


def _skip(first: tuple, events) -> None:
    """Consume the rest of the value that starts with event `first`."""
    depth = first[1] in ("start_map", "start_array")
    while depth:
        _, event, _ = next(events)
        depth += event in ("start_map", "start_array")
        depth -= event in ("end_map", "end_array")
