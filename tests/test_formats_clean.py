"""Untrusted text normalised at ingest: NFC, no bidirectional or invisible controls, titles
empty after that refused; two titles that differ only by invisible characters are one title."""

from __future__ import annotations

import json

import pytest

from rag.corpus import load_papers, paper_id_for

ABSTRACT = "We present a method for invoices that is described at some length in this abstract. " * 2


def _load(tmp_path, rows):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return load_papers([path])


def test_clean_text_examples():
    from rag.clean import clean_text

    assert clean_text("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert clean_text("Cafe\u0301 a\u200bb\u2066c\u2069\u00add\ufeff\u200e\u061c") == "Café abcd"
    assert clean_text("line\none\ttab\x00\x07\x1b[31m\x7f\x85") == "line\none\ttab[31m"
    assert clean_text("\u200b\u200c\u200d\u2060") == ""
    assert clean_text("lone \ud800 surrogate") == "lone  surrogate"
    assert clean_text("tag\U000e0041\U000e0042s") == "tags"  # Unicode tag characters hide text


def test_ingest_normalises_and_refuses(tmp_path):
    rows = [
        {"title": "invoice\u202egpj.exe", "abstract": ABSTRACT, "authors": "Ma\u0301ria \u200bX"},  # 1
        {"title": "\u200b\u200b\u200b", "abstract": ABSTRACT},  # 2 an invisible title
        {"title": "Re\u0301sume\u0301 of a paper", "abstract": ABSTRACT + "\u202e tail"},  # 3 NFD
        {"title": "Résumé\u200b of a paper", "abstract": ABSTRACT + " tail"},  # 4 the same paper as 3
        {"title": "\x00\x01", "abstract": ABSTRACT},  # 5 controls only
    ]
    papers, stream = _load(tmp_path, rows)
    assert [p.title for p in papers] == ["invoicegpj.exe", "Résumé of a paper"]
    assert papers[0].authors == "Mária X"
    assert "\u202e" not in papers[1].abstract
    assert stream.duplicates == 1  # records 3 and 4 are one paper
    assert [(s.line, s.reason) for s in stream.skipped] == [
        (2, "title is empty after removing invisible and control characters"),
        (5, "title is empty after removing invisible and control characters")]


def test_zero_width_space_makes_no_new_title(tmp_path):
    papers, _ = _load(tmp_path, [{"title": "Deep\u200b Learning", "abstract": ABSTRACT},
                                 {"title": "Deep Learning", "abstract": ABSTRACT + " more"}])
    assert [p.title for p in papers] == ["Deep Learning", "Deep Learning"]
    assert [p.paper_id for p in papers] == [paper_id_for("Deep Learning"), paper_id_for("Deep Learning", 2)]
    assert paper_id_for("Deep\u200b Learning") == paper_id_for("Deep Learning")


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_every_reader_cleans(tmp_path, suffix):
    title = "Invisible\u200b\u202e Title"
    path = tmp_path / ("p" + suffix)
    if suffix == ".txt":
        path.write_text(f"{title}\n\n{ABSTRACT}\n", encoding="utf-8")
    else:
        path.write_text(f'title,abstract\n"{title}","{ABSTRACT}"\n', encoding="utf-8")
    papers, _ = load_papers([path])
    assert [p.title for p in papers] == ["Invisible Title"]


def test_dropped_ranges_cover_every_control_and_format_character():
    import sys
    import unicodedata

    from rag.clean import _DROP

    for code in range(sys.maxunicode + 1):
        c = chr(code)
        category = unicodedata.category(c)
        if category in ("Cc", "Cf", "Cs") and c not in "\n\t":
            assert _DROP.match(c), f"U+{code:04X} ({category}) is kept"
        elif _DROP.match(c):
            assert category == "Cn", f"U+{code:04X} ({category}) is dropped"  # later Unicode's Cf
