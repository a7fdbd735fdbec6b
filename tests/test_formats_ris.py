"""RIS records are never lost silently (issue 30.5): a record without its `ER  -` line ends
where the next `TY  -` starts, instead of swallowing that record."""

from __future__ import annotations

from rag.corpus import load_papers


def _record(title: str, end: bool = True) -> str:
    abstract = f"The abstract of {title}, long enough to be read as the abstract of a paper."
    return f"TY  - JOUR\nTI  - {title}\nAB  - {abstract}\n" + ("ER  - \n" if end else "") + "\n"


def test_a_record_without_er_does_not_swallow_the_next(tmp_path):
    path = tmp_path / "three.ris"
    path.write_text(_record("First") + _record("Second, without ER", end=False) + _record("Third"), encoding="utf-8")
    papers, stream = load_papers([path])
    assert [p.title for p in papers] == ["First", "Second, without ER", "Third"]
    assert stream.skipped == []
    last = tmp_path / "last.ris"  # the last record without ER was already read
    last.write_text(_record("Only", end=False), encoding="utf-8")
    assert [p.title for p in load_papers([last])[0]] == ["Only"]
