"""Directories: symlinked sub-directories followed (a loop is reported, never walked twice),
broken links and files reached twice reported; every skip says what and why."""

from __future__ import annotations

import json

import pytest

from rag.corpus import load_papers


@pytest.fixture(scope="module")
def real():
    from rag.settings import BUNDLED_CORPUS

    return load_papers([BUNDLED_CORPUS])[0][:6]


def _jsonl(path, papers):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))


def test_symlinked_subdirectory_followed_and_loops_reported(tmp_path, real):
    elsewhere = tmp_path / "elsewhere"
    _jsonl(elsewhere / "linked.jsonl", real[1:2])
    corpus = tmp_path / "corpus"
    _jsonl(corpus / "a.jsonl", real[:1])
    (corpus / "more").symlink_to(elsewhere, target_is_directory=True)
    (corpus / "more" / "loop").symlink_to(corpus, target_is_directory=True)  # elsewhere/loop -> corpus
    (corpus / "self").symlink_to(".", target_is_directory=True)
    (corpus / "gone").symlink_to(tmp_path / "absent")
    (corpus / "again.jsonl").symlink_to(corpus / "a.jsonl")
    papers, stream = load_papers([corpus])
    assert [p.title for p in papers] == [p.title for p in real[:2]]
    notes = sorted(str(s) for s in stream.skipped)
    assert notes == sorted([
        "corpus/again.jsonl:0: the same file as corpus/a.jsonl (a symlink), read once",
        "corpus/gone:0: a broken symlink (to " + str(tmp_path / "absent") + ")",
        "corpus/more/loop:0: a symlink loop (back to corpus), not walked again",
        "corpus/self:0: a symlink loop (back to corpus), not walked again",
    ])
