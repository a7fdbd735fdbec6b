"""Compressed inputs read as streams, alone or inside a directory; broken archives reported."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path

import pytest

from rag.corpus import load_papers

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


@pytest.fixture(scope="module")
def real():
    from rag.settings import BUNDLED_CORPUS

    return load_papers([BUNDLED_CORPUS])[0][:6]


def _texts(real) -> dict[str, str]:
    buf = io.StringIO()
    csv.writer(buf).writerows([["title", "abstract"]] + [[p.title, p.abstract] for p in real[:2]])
    return {
        "a.jsonl": "".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in real[:2]),
        "b.json": json.dumps([{"title": p.title, "abstract": p.abstract} for p in real[:2]], indent=2),
        "c.csv": buf.getvalue(),
        "d.txt": "\n\n".join(x for p in real[:2] for x in (p.title, p.abstract)),
        "e.bib": (FIXTURES / "zotero.bib").read_text(encoding="utf-8"),
        "f.ris": (FIXTURES / "zotero.ris").read_text(encoding="utf-8"),
    }


@pytest.mark.parametrize("name", ["a.jsonl", "b.json", "c.csv", "d.txt", "e.bib", "f.ris"])
def test_gzip_file_same_as_plain(tmp_path, real, name):
    text = _texts(real)[name]
    plain = tmp_path / name
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "gz" / (name + ".gz")
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(text.encode()))
    want, _ = load_papers([plain])
    got, stream = load_papers([packed])
    assert stream.skipped == []
    assert len(got) == 2
    assert [(p.title, p.abstract, p.url) for p in got] == [(p.title, p.abstract, p.url) for p in want]
    assert {p.source for p in got} == {name + ".gz"}


def test_gzip_inside_a_directory(tmp_path, real):
    d = tmp_path / "corpus"
    d.mkdir()
    texts = _texts(real)
    (d / "a.jsonl.gz").write_bytes(gzip.compress(texts["a.jsonl"].encode()))
    (d / "old.pdf.gz").write_bytes(gzip.compress(b"%PDF"))
    (d / "cut.csv.gz").write_bytes(gzip.compress(texts["c.csv"].encode())[:-30])
    (d / "fake.jsonl.gz").write_text(texts["a.jsonl"], encoding="utf-8")  # named .gz, not compressed
    packed = bytearray(gzip.compress(texts["d.txt"].encode()))
    packed[40:60] = bytes(20)
    (d / "damaged.txt.gz").write_bytes(bytes(packed))
    papers, stream = load_papers([d])
    assert [f.name for f in stream.files] == [
        "a.jsonl.gz", "cut.csv.gz", "damaged.txt.gz", "fake.jsonl.gz", "old.pdf.gz"]
    assert [p.title for p in papers] == [p.title for p in real[:2]]
    reasons = {s.file: s.reason for s in stream.skipped}
    assert reasons["old.pdf.gz"] == "unsupported file type '.pdf.gz'"
    assert "not a gzip file" in reasons["fake.jsonl.gz"]
    assert "truncated" in reasons["cut.csv.gz"]
    assert "damaged" in reasons["damaged.txt.gz"]


def test_gzip_is_read_as_a_stream(tmp_path, real):
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(4000):
            fh.write(json.dumps({"title": f"Paper {i}", "abstract": real[0].abstract * 4}) + "\n")
    from rag.corpus import PaperStream

    it = iter(PaperStream([path]))
    first = next(it)
    fds = [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(path)]
    pos = int(Path(f"/proc/self/fdinfo/{fds[0]}").read_text().split()[1])
    assert first.title == "Paper 0"
    assert pos < path.stat().st_size / 4, (pos, path.stat().st_size)
    assert 1 + sum(1 for _ in it) == 4000


def test_count_records_before_ingest(tmp_path, real):
    from rag.corpus import PaperStream
    from rag.formats.count import count_records

    d = tmp_path / "corpus"
    d.mkdir()
    for name, text in _texts(real).items():
        (d / (name + ".gz")).write_bytes(gzip.compress(text.encode()))
        (d / name).write_text(text, encoding="utf-8")
    stream = PaperStream([d])
    assert count_records(stream.files) == 12 * 2 == sum(1 for _ in stream) + stream.duplicates
    (d / "z.pdf.gz").write_bytes(gzip.compress(b"%PDF"))
    assert count_records(PaperStream([d]).files) is None
