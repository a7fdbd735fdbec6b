"""Small files that used to exhaust memory: every reader is bounded (issues 28.5 and 30.3).

- skipped records keep their reasons up to `MAX_SKIPPED_KEPT`, the rest are counted;
- an upload's decompressed size is checked while streaming: a gzip bomb is refused unread;
- JSON nested deeper than any paper record is refused, not built (it took gigabytes) and
  not left to a RecursionError;
- an upload is checked streaming: papers are counted, never held.
Memory is measured with tracemalloc (allocations during the read), never with a clock.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pytest

from rag.corpus import PaperStream
from rag.errors import ConfigError
from rag.formats.base import MAX_SKIPPED_KEPT
from rag.formats.jsonfile import MAX_DEPTH
from rag.settings import Settings
from rag.sources import add_file, check_papers, upload_dir


def _peak_mib(read) -> float:
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_millions_of_bad_records_cost_counters_not_memory(tmp_path):
    """A .jsonl.gz of `{}` lines: the probe's 917 KB one grew a server by 5 GB, one stored
    reason per line. 200,000 lines here (the cost was linear: 30 MB of reasons)."""
    path = tmp_path / "empty-objects.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"{}\n" * 200_000)
    stream = PaperStream([path])
    peak = _peak_mib(lambda: sum(1 for _ in stream))
    assert peak < 5, f"{peak:.1f} MiB"
    assert stream.skipped_records == 200_000 and stream.skipped.omitted == 200_000 - MAX_SKIPPED_KEPT
    assert len(stream.skipped) == MAX_SKIPPED_KEPT and str(stream.skipped[0]).endswith(":1: missing title")


def test_an_upload_is_checked_streaming(tmp_path, real_papers):
    """The check counts papers; it never holds them (it held every paper of the file: about
    4 MiB of abstracts here, 50 MiB for a file at the upload limit)."""
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"title": f"{p.title} ({i})", "abstract": p.abstract}) + "\n"
                            for i in range(4) for p in real_papers), encoding="utf-8")
    peak = _peak_mib(lambda: check_papers(path))
    assert peak < 2, f"{peak:.1f} MiB"
    assert check_papers(path)[0] == 4 * len(real_papers)


def test_a_gzip_bomb_upload_is_refused_unread(tmp_path):
    """100 MB of `{}` lines in a 100 KB .gz, against the 50 MB upload limit: refused with the
    reason before one record is read; nothing kept, nothing indexed."""
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb") as fh:
        for _ in range(100):
            fh.write(b"{}\n" * 350_000)
    assert bomb.stat().st_size < 200_000
    s = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match=r"bomb\.jsonl\.gz.*more than 52,428,800 bytes once decompressed") as refused:
        add_file(s, bomb)
    assert "\n" not in str(refused.value)
    assert list(upload_dir(s).glob("bomb*")) == [] and not (s.data_dir / "chroma").exists()


@pytest.mark.parametrize("name, text", [
    ("deep.jsonl", '{"a":' * 5000 + "1" + "}" * 5000 + "\n"),  # RecursionError in json.loads
    ("shallow-but-too-deep.jsonl", json.dumps({"title": "T", "abstract": "a" * 80, "x": [[[0]]]}).replace(
        "[[[0]]]", "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)) + "\n"),
    ("deep.json", '{"a":\n' * 100_000 + "1" + "}" * 100_000),  # 4-7 GB to build with ijson
    ("deep-array.json", "[" * 100_000 + "]" * 100_000),
])
def test_deeply_nested_json_is_refused_with_the_reason(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    stream = PaperStream([path])
    peak = _peak_mib(lambda: list(stream))
    assert len(stream.skipped) == 1 and stream.read == 0
    assert f"JSON nested deeper than {MAX_DEPTH} levels" in stream.skipped[0].reason
    assert peak < 20, f"{peak:.1f} MiB"
    with pytest.raises(ConfigError, match="nested deeper than"):
        check_papers(path)
