"""The corpus readers: exact counts on the bundled exports, every accepted format, and every
malformed case reported with file, line and reason while the good records around it are read.

Small files are written under tmp_path from real papers of the bundled corpus.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from rag.corpus import (
    MAX_ABSTRACT_CHARS,
    MAX_LINE_BYTES,
    PaperStream,
    Skipped,
    load_papers,
    paper_id_for,
    read_daily_papers,
    read_jsonl,
)
from rag.settings import BUNDLED_CORPUS

CHROME = [
    "new", "Get trending papers in your email inbox!", "Get trending papers in your email inbox once a day!",
    "Subscribe", "Daily Papers", "by AK and the research community", "byAK and the research community", "Mar 14",
]
FCN = "Fully Convolutional Networks for Semantic Segmentation"


@pytest.fixture(scope="module")
def bundled():
    return load_papers([BUNDLED_CORPUS])


@pytest.fixture(scope="module")
def real(bundled):
    """Twelve real papers with distinct titles, for hand-made files."""
    papers, _ = bundled
    return papers[:12]


def records(stream: PaperStream) -> int:
    return stream.read + stream.skipped_records


# --- the bundled corpus ------------------------------------------------------------------

def test_bundled_counts(bundled):
    papers, stream = bundled
    assert stream.read == 614
    assert len(papers) == 555
    assert stream.duplicates == 614 - 555
    assert stream.skipped == []
    assert len({p.paper_id for p in papers}) == 555


@pytest.mark.parametrize("name, pairs", [
    ("000_4a246b5c4a53f764.txt", 84), ("001_c768b14ba66396d6.txt", 81),
    ("002_2052bfa5135965c2.txt", 219), ("003_73b1d1d511fa55a1.txt", 230),
])
def test_bundled_pairs_per_file(name, pairs):
    skipped: list[Skipped] = []
    got = list(read_daily_papers(BUNDLED_CORPUS / name, skipped))
    assert len(got) == pairs
    assert skipped == []
    assert all(len(r["abstract"]) >= 330 for _, r in got)
    assert all(6 <= len(r["title"]) <= 176 for _, r in got)


def test_two_versions_of_fcn_both_kept(bundled):
    papers, _ = bundled
    fcn = [p for p in papers if p.title == FCN]
    assert len(fcn) == 2
    assert {p.paper_id for p in fcn} == {paper_id_for(FCN), paper_id_for(FCN, 2)}
    assert fcn[0].abstract != fcn[1].abstract


def test_glued_subscribe_removed_and_no_chrome_title(bundled):
    papers, _ = bundled
    titles = {p.title for p in papers}
    assert not any(t.startswith("Subscribe") for t in titles)
    assert "Reverse Engineering of Imperceptible Adversarial Image Perturbations" in titles  # first of 002
    assert "Feature Gradients: Scalable Feature Selection via Discrete Relaxation" in titles  # first of 003
    chrome = {c.casefold() for c in CHROME}
    assert not [t for t in titles if t.casefold() in chrome]
    assert not [p for p in papers if p.abstract.casefold() in chrome]


# --- the two txt layouts ---------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_txt_blank_line_layout(tmp_path, real):
    body = "\n\n".join(["new", "Get trending papers in your email inbox!", "Subscribe", "Daily Papers",
                        "by AK and the research community", "Mar 14"]
                       + [x for p in real[:3] for x in (p.title, p.abstract)])
    papers, stream = load_papers([_write(tmp_path / "a.txt", body + "\n")])
    assert [(p.title, p.abstract) for p in papers] == [(p.title, p.abstract) for p in real[:3]]
    assert stream.skipped == []


def test_txt_consecutive_layout_with_glued_chrome(tmp_path, real):
    lines = ["Get trending papers in your email inbox once a day!", "Get trending papers in your email inbox!",
             "Subscribe" + real[0].title, real[0].abstract] + [x for p in real[1:4] for x in (p.title, p.abstract)]
    papers, stream = load_papers([_write(tmp_path / "b.txt", "\n".join(lines) + "\n")])
    assert [p.title for p in papers] == [p.title for p in real[:4]]
    assert stream.skipped == []


def test_txt_missing_abstracts_reported_rest_read(tmp_path, real):
    long_title = "Attention vs. Convolution: Why Do Vision Transformers Need No Abstract? A Study"
    orphan = next(p.abstract for p in real if len(p.abstract) > 400)
    lines = [real[0].title, real[0].abstract,
             "Short Title Without Abstract",  # line 3
             real[1].title, real[1].abstract,
             long_title,  # line 6: >= 50 characters, "vs. C" and "? A" inside, still a title
             real[2].title, real[2].abstract,
             orphan,  # line 9: prose with no title
             real[4].title, real[4].abstract,
             "Dangling Last Title"]  # line 12
    papers, stream = load_papers([_write(tmp_path / "c.txt", "\n".join(lines))])
    assert [p.title for p in papers] == [real[i].title for i in (0, 1, 2, 4)]
    assert [(s.file, s.line) for s in stream.skipped] == [("c.txt", 3), ("c.txt", 6), ("c.txt", 9), ("c.txt", 12)]
    assert "no abstract" in stream.skipped[0].reason
    assert "without a title" in stream.skipped[2].reason
    assert records(stream) == 8


# --- JSON Lines, CSV, arXiv snapshot ---------------------------------------------------

def test_jsonl_good_records(tmp_path, real):
    path = tmp_path / "p.jsonl"
    rows = [{"title": p.title, "abstract": p.abstract} for p in real[:3]]
    rows[1].update(id="x-1", authors=["A. One", "B. Two"], year=2021, url="https://example.org/x1")
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [p.title for p in real[:3]]
    assert papers[1].paper_id == "id:x-1"
    assert (papers[1].authors, papers[1].year, papers[1].url) == ("A. One, B. Two", 2021, "https://example.org/x1")
    assert papers[0].paper_id == paper_id_for(real[0].title)
    assert stream.skipped == [] and records(stream) == 3


def test_jsonl_every_malformed_case(tmp_path, real):
    good = [json.dumps({"title": p.title, "abstract": p.abstract}).encode() for p in real[:5]]
    lines = [
        good[0],  # 1
        json.dumps({"title": "Only A Title"}).encode(),  # 2 missing abstract
        b'{"title": "Broken", "abstract": ',  # 3 bad JSON
        good[1],  # 4
        json.dumps({"title": "Bytes", "abstract": "x" * 80}).encode()[:-3] + b"\xff\xfe\"}",  # 5 not UTF-8
        b"[1, 2, 3]",  # 6 not an object
        json.dumps({"title": "Huge", "abstract": "word " * 210_000}).encode(),  # 7 1 MB abstract
        json.dumps({"abstract": real[4].abstract}).encode(),  # 8 missing title
        json.dumps({"title": ["not", "text"], "abstract": real[4].abstract}).encode(),  # 9 title not text
        json.dumps({"title": "Short", "abstract": "too short"}).encode(),  # 10
        good[2],  # 11
        good[3][:40],  # 12 truncated last line, no newline
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines))
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [p.title for p in real[:3]]
    reasons = {s.line: s.reason for s in stream.skipped}
    assert set(reasons) == {2, 3, 5, 6, 7, 8, 9, 10, 12}
    assert all(s.file == "bad.jsonl" for s in stream.skipped)
    assert reasons[2] == "missing abstract"
    assert reasons[3].startswith("bad JSON")
    assert "not UTF-8" in reasons[5] and "0xff" in reasons[5]
    assert "not an object" in reasons[6]
    assert "1,050,000 characters" in reasons[7] or "longer than the" in reasons[7]
    assert f"{MAX_ABSTRACT_CHARS:,}" in reasons[7]
    assert reasons[8] == "missing title"
    assert "not text" in reasons[9]
    assert "shorter" in reasons[10]
    assert reasons[12].startswith("bad JSON")
    assert records(stream) == len(lines)


def test_json_array_read_in_json_hinted_in_jsonl(tmp_path, real):
    """A `.json` holding one array is a document (tests/test_formats_json.py); in a `.jsonl`,
    where each line is a record, the array line is refused with the fix."""
    text = json.dumps([{"title": real[0].title, "abstract": real[0].abstract}])
    papers, stream = load_papers([_write(tmp_path / "array.json", text)])
    assert [p.title for p in papers] == [real[0].title] and stream.skipped == []
    papers, stream = load_papers([_write(tmp_path / "array.jsonl", text)])
    assert papers == []
    assert "name the file .json" in stream.skipped[0].reason


def test_same_explicit_id_with_other_content_keeps_the_first(tmp_path, real):
    path = tmp_path / "ids.jsonl"
    rows = [{"id": "7", "title": real[0].title, "abstract": real[0].abstract},
            {"id": "7", "title": real[0].title, "abstract": real[0].abstract},  # exact duplicate
            {"id": "7", "title": real[1].title, "abstract": real[1].abstract}]  # conflict
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [real[0].title]
    assert stream.duplicates == 1
    assert [(s.line, "already read" in s.reason) for s in stream.skipped] == [(3, True)]
    assert records(stream) == 3


def test_arxiv_snapshot_records(tmp_path, real):
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    rows = [
        {"id": "2103.15808", "submitter": "X", "authors": "Haiping Wu, Bin Xiao and Lei Zhang",
         "title": "CvT: Introducing Convolutions to\n  Vision Transformers", "comments": None,
         "journal-ref": None, "doi": None, "report-no": None, "categories": "cs.CV",
         "license": None, "abstract": "  " + real[0].abstract.replace(". ", ".\n"),
         "versions": [{"version": "v1", "created": "Mon, 29 Mar 2021 17:58:22 GMT"}],
         "update_date": "2023-11-02", "authors_parsed": [["Wu", "Haiping", ""]]},
        {"id": "hep-th/9901001", "title": "An Old Style Identifier Paper", "abstract": real[1].abstract,
         "authors": "A. Author", "update_date": "2008-02-03", "categories": "hep-th"},
        {"id": "0704.0001", "title": "No Abstract Here", "abstract": "", "authors": "B",
         "update_date": "2008-11-13", "categories": "hep-ph"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    papers, stream = load_papers([path])
    cvt, old = papers
    assert cvt.paper_id == "arxiv:2103.15808"
    assert cvt.title == "CvT: Introducing Convolutions to Vision Transformers"
    assert cvt.abstract == real[0].abstract
    assert (cvt.year, cvt.url) == (2021, "https://arxiv.org/abs/2103.15808")
    assert cvt.authors == "Haiping Wu, Bin Xiao and Lei Zhang"
    assert (old.paper_id, old.year) == ("arxiv:hep-th/9901001", 1999)
    assert [(s.line, s.reason) for s in stream.skipped] == [(3, "missing abstract")]


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def test_csv_good_and_bad_rows(tmp_path, real):
    rows = [["Title", "Abstract", "Year", "URL"],  # header, any case
            [real[0].title, real[0].abstract, "2020", "https://e.org/0"],  # line 2
            [real[1].title, real[1].abstract.replace(". ", ".\n", 1), "", ""],  # lines 3-4: quoted newline
            [real[2].title],  # line 5: missing abstract field
            [real[3].title, real[3].abstract, "2021", "u", "extra"],  # line 6: too many fields
            [real[4].title, real[4].abstract]]  # line 7
    text = _csv_text(rows)
    path = tmp_path / "papers.csv"
    path.write_text("\n" + text, encoding="utf-8")  # a blank line first moves every line by one
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [real[i].title for i in (0, 1, 4)]
    assert papers[0].year == 2020 and papers[0].url == "https://e.org/0"
    assert papers[1].abstract == real[1].abstract
    assert [(s.line, s.reason) for s in stream.skipped] == [
        (6, "missing abstract"), (7, "5 fields but the header has 4")]
    assert records(stream) == 5


def test_csv_missing_columns_skips_every_row(tmp_path, real):
    path = tmp_path / "nocol.csv"
    path.write_text(_csv_text([["title", "summary"]] + [[p.title, p.abstract] for p in real[:4]]), encoding="utf-8")
    papers, stream = load_papers([path])
    assert papers == []
    assert [s.line for s in stream.skipped] == [2, 3, 4, 5]
    assert all(s.reason == "the CSV header has no abstract column" for s in stream.skipped)
    assert records(stream) == 4


def test_csv_line_numbers_survive_an_undecodable_row(tmp_path, real):
    good = _csv_text([["title", "abstract"]] + [[p.title, p.abstract] for p in real[:3]]).encode().splitlines()
    bad = b'"Caf\xe9 Vision","' + b"An abstract written in Latin-1 by mistake. " * 3 + b'"'
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"\n".join([good[0], good[1], bad, good[2], good[3]]) + b"\n")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [p.title for p in real[:3]]
    assert [s.line for s in stream.skipped] == [3]
    assert "not UTF-8" in stream.skipped[0].reason
    assert records(stream) == 4


def test_csv_huge_abstract(tmp_path, real):
    path = tmp_path / "huge.csv"
    path.write_text(_csv_text([["title", "abstract"], ["Huge", "word " * 210_000], [real[0].title, real[0].abstract]]),
                    encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [real[0].title]
    assert [s.line for s in stream.skipped] == [2]
    assert "field larger than field limit" in stream.skipped[0].reason or "limit" in stream.skipped[0].reason
    assert records(stream) == 2


# --- whole-file problems, encodings, sizes ----------------------------------------------

@pytest.mark.parametrize("name", ["empty.txt", "empty.jsonl", "empty.csv", "blank.jsonl"])
def test_empty_files_reported(tmp_path, name):
    path = tmp_path / name
    path.write_text("\n \n" if name.startswith("blank") else "", encoding="utf-8")
    papers, stream = load_papers([path])
    assert papers == []
    assert stream.skipped == [Skipped(name, 0, "empty file")]
    assert records(stream) == 0


def test_latin1_file(tmp_path, real):
    """A Latin-1 export: the records with non-ASCII bytes are reported, the ASCII ones read."""
    accented = ("Réseaux de neurones pour la vision", "Nous présentons une méthode. " * 8)
    lines = [real[0].title, real[0].abstract, accented[0], real[1].abstract,  # pair 2: title not UTF-8
             real[2].title, accented[1],  # pair 3: abstract not UTF-8
             real[3].title, real[3].abstract]
    path = tmp_path / "latin1.txt"
    path.write_bytes("\n\n".join(lines).encode("latin-1"))
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [real[0].title, real[3].title]
    assert [s.line for s in stream.skipped] == [5, 9]
    assert all("not UTF-8" in s.reason for s in stream.skipped)
    assert "abstract on line 11" in stream.skipped[1].reason
    assert records(stream) == 4

    jl = tmp_path / "latin1.jsonl"
    jl.write_bytes("\n".join(json.dumps({"title": t, "abstract": a}, ensure_ascii=False)
                             for t, a in [(real[0].title, real[0].abstract), accented]).encode("latin-1"))
    papers, stream = load_papers([jl])
    assert [p.title for p in papers] == [real[0].title]
    assert [(s.line, "not UTF-8" in s.reason) for s in stream.skipped] == [(2, True)]


def test_utf8_bom_and_crlf(tmp_path, real):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv_text([["title", "abstract"], [real[0].title, real[0].abstract]]).encode())
    papers, _ = load_papers([path])
    assert [p.title for p in papers] == [real[0].title]
    txt = tmp_path / "crlf.txt"
    txt.write_bytes("\r\n".join([real[1].title, real[1].abstract]).encode())
    papers, _ = load_papers([txt])
    assert [(p.title, p.abstract) for p in papers] == [(real[1].title, real[1].abstract)]


def test_line_over_the_limit_is_skipped(tmp_path, real):
    path = tmp_path / "long.jsonl"
    with path.open("wb") as fh:
        fh.write(json.dumps({"title": "Long", "abstract": "a" * (MAX_LINE_BYTES + 1000)}).encode() + b"\n")
        fh.write(json.dumps({"title": real[0].title, "abstract": real[0].abstract}).encode() + b"\n")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == [real[0].title]
    assert [s.line for s in stream.skipped] == [1]
    assert "longer than the" in stream.skipped[0].reason


def test_directory_mixed_files(tmp_path, real):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    _write(d / "a.txt", "\n".join([real[0].title, real[0].abstract]))
    (d / "b.jsonl").write_text(json.dumps({"title": real[1].title, "abstract": real[1].abstract}) + "\n{oops\n")
    _write(d / "sub" / "c.csv", _csv_text([["title", "abstract"], [real[2].title, real[2].abstract]]))
    _write(d / "notes.md", "# not a corpus file")
    _write(d / "empty.jsonl", "")
    papers, stream = load_papers([d])
    assert [f.name for f in stream.files] == ["a.txt", "b.jsonl", "empty.jsonl", "c.csv"]
    assert [p.title for p in papers] == [p.title for p in real[:3]]
    assert [str(s) for s in stream.skipped] == ["b.jsonl:2: bad JSON (Expecting property name enclosed in double "
                                                "quotes at column 2)", "empty.jsonl:0: empty file"]
    assert records(stream) == 4


def test_unsupported_file_and_missing_path(tmp_path):
    other = _write(tmp_path / "paper.pdf", "%PDF-1.4")
    papers, stream = load_papers([other])
    assert papers == [] and stream.skipped == [Skipped("paper.pdf", 0, "unsupported file type '.pdf'")]
    with pytest.raises(FileNotFoundError, match="no such corpus file"):
        PaperStream([tmp_path / "absent.jsonl"])


# --- streaming ---------------------------------------------------------------------------

def _big_snapshot(path: Path, n: int, abstract: str) -> int:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"2101.{i:05d}", "title": f"Paper number {i} on vision",
                                 "abstract": abstract, "authors": "A. B", "update_date": "2021-01-05",
                                 "categories": "cs.CV"}) + "\n")
    return path.stat().st_size


def test_arxiv_reader_streams(tmp_path, real, capsys):
    path = tmp_path / "snapshot.jsonl"
    size = _big_snapshot(path, 5_000, real[0].abstract * 4)
    assert size > 20_000_000

    assert inspect.isgeneratorfunction(read_jsonl)
    stream = PaperStream([path])
    it = iter(stream)
    assert inspect.isgenerator(it)

    tracemalloc.start()
    first = next(it)
    _, peak_first = tracemalloc.get_traced_memory()
    # The file is open and has been read only a little way: its offset, from the kernel.
    fds = [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(path)]
    assert len(fds) == 1
    pos = int(Path(f"/proc/self/fdinfo/{fds[0]}").read_text().split()[1])
    count = 1 + sum(1 for _ in it)
    _, peak_all = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert first.paper_id == "arxiv:2101.00000" and first.year == 2021
    assert count == 5_000 and stream.skipped == []
    assert pos < 1_000_000, pos
    assert peak_first < 1_000_000, peak_first
    assert peak_all < size / 4, (peak_all, size)
    with capsys.disabled():
        print(f"\n[streaming] file {size / 1e6:.1f} MB: offset after the first record {pos:,} B, "
              f"peak {peak_first / 1e3:.0f} kB; whole file peak {peak_all / 1e6:.1f} MB")
