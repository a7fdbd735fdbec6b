"""A `.json` file holding one JSON document (an array of records, or an object with a key
holding the list), pretty-printed, read streamed with ijson; and CSV with `;` or tab
delimiters, sniffed."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc

import pytest

from rag.corpus import load_papers


@pytest.fixture(scope="module")
def real():
    from rag.corpus import load_papers as lp
    from rag.settings import BUNDLED_CORPUS

    return lp([BUNDLED_CORPUS])[0][:8]


def _rows(papers):
    return [{"title": p.title, "abstract": p.abstract, "year": 2020 + i, "authors": ["A. One", "B. Two"]}
            for i, p in enumerate(papers)]


@pytest.mark.parametrize("shape", ["array", "papers", "records-after-metadata", "compact-wrapper"])
def test_pretty_json_document(tmp_path, real, shape):
    rows = _rows(real[:5])
    doc = {"array": rows, "papers": {"papers": rows},
           "records-after-metadata": {"version": 2, "exported": {"by": "tool"}, "tags": ["a", "b"], "items": rows},
           "compact-wrapper": {"papers": rows}}[shape]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(doc, indent=None if shape == "compact-wrapper" else 2), encoding="utf-8")
    papers, stream = load_papers([path])
    assert stream.skipped == []
    assert [p.title for p in papers] == [p.title for p in real[:5]]
    assert (papers[1].year, papers[1].authors) == (2021, "A. One, B. Two")


def test_single_pretty_record(tmp_path, real):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"title": real[0].title, "abstract": real[0].abstract, "authors": ["X"]}, indent=2))
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [real[0].title] and stream.skipped == []


def test_json_document_bad_items_and_truncation(tmp_path, real):
    rows = _rows(real[:3])
    doc = [rows[0], "a string", {"title": "No abstract"}, rows[1], [1, 2], rows[2]]
    path = tmp_path / "bad.json"
    text = json.dumps(doc, indent=2)
    path.write_text(text, encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [p.title for p in real[:3]]
    assert [str(s) for s in stream.skipped] == [
        "bad.json record 2: a JSON str, not an object", "bad.json record 3: missing abstract",
        "bad.json record 5: a JSON array, not an object"]

    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(rows, indent=2)[:-200], encoding="utf-8")
    papers, stream = load_papers([cut])
    assert [p.title for p in papers] == [p.title for p in real[:2]]
    assert len(stream.skipped) == 1 and stream.skipped[0].line == 3
    assert stream.skipped[0].reason.startswith("bad JSON")


def test_json_lines_in_a_json_file_still_read(tmp_path, real):
    path = tmp_path / "lines.json"
    path.write_text("\n".join(json.dumps(r) for r in _rows(real[:3])) + "\n", encoding="utf-8")
    papers, stream = load_papers([path])
    assert len(papers) == 3 and stream.skipped == []


def test_big_json_array_is_streamed(tmp_path, real):
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for i in range(800):
            fh.write(("," if i else "") + json.dumps({"title": f"Paper {i}", "abstract": real[0].abstract * 4},
                                                    indent=2) + "\n")
        fh.write("]\n")
    size = path.stat().st_size
    from rag.corpus import PaperStream

    stream = PaperStream([path])
    tracemalloc.start()
    n = sum(1 for _ in stream)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 800 and stream.skipped == []
    assert peak < size / 10, (peak, size)  # one record at a time, never the document


def _csv(rows, delimiter):
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(rows)
    return buf.getvalue()


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiters_sniffed(tmp_path, real, delimiter):
    rows = [["title", "abstract", "year"]] + [[p.title, p.abstract, "2019"] for p in real[:4]]
    path = tmp_path / "papers.csv"
    path.write_text(_csv(rows, delimiter), encoding="utf-8")
    papers, stream = load_papers([path])
    assert stream.skipped == []
    assert [(p.title, p.abstract, p.year) for p in papers] == [(p.title, p.abstract, 2019) for p in real[:4]]


def test_excel_sep_line(tmp_path, real):
    path = tmp_path / "excel.csv"
    path.write_text("sep=;\n" + _csv([["Title", "Abstract"]] + [[p.title, p.abstract] for p in real[:2]], ";"),
                    encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [p.title for p in real[:2]] and stream.skipped == []


def test_tsv_extension(tmp_path, real):
    path = tmp_path / "papers.tsv"
    path.write_text(_csv([["Title", "Abstract"]] + [[p.title, p.abstract] for p in real[:2]], "\t"), encoding="utf-8")
    papers, stream = load_papers([path])
    assert len(papers) == 2 and stream.skipped == []


def test_json_lines_with_a_broken_first_line(tmp_path, real):
    path = tmp_path / "lines.json"
    rows = [json.dumps(r) for r in _rows(real[:3])]
    path.write_text("\n".join([rows[0][:30], *rows[1:]]) + "\n", encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [p.title for p in real[1:3]]
    assert [s.line for s in stream.skipped] == [1] and stream.skipped[0].reason.startswith("bad JSON")


def test_authors_as_objects(tmp_path, real):
    path = tmp_path / "s2.json"
    path.write_text(json.dumps({"data": [{"title": real[0].title, "abstract": real[0].abstract,
                                          "authors": [{"authorId": "1", "name": "Ada Lovelace"},
                                                      {"authorId": "2", "name": "Alan Turing"}]}]}, indent=1))
    papers, _ = load_papers([path])
    assert papers[0].authors == "Ada Lovelace, Alan Turing"
