"""`rag.sources`, what the UI's upload and Remove run, against a real store (embedded and a
real Chroma server) and the real model: a good file is kept under data_dir/uploads and
ingested; a refused file (bad name, wrong type, too large, damaged, no paper) changes nothing
and leaves nothing behind; re-adding is a no-op; removing takes the source's papers out of
both retrievers."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.sources import add_file, checked_name, list_sources, remove, upload_dir

# The uploaded files of these tests, test_upload_browser.py and test_cli.py.
UPLOADS = Path(__file__).parent / "fixtures" / "upload"
BEES = "Which papers monitor honeybee colonies from the sound of the hive?"
BEE_TITLES = {"Acoustic Monitoring of Honeybee Colonies with Convolutional Networks",
              "Predicting Honeybee Swarming from Hive Sound and Temperature"}


@pytest.fixture(params=["embedded", "server"])
def settings(request, tmp_path):
    if request.param == "embedded":
        return Settings(data_dir=tmp_path / "data")
    host, port = request.getfixturevalue("chroma_server")
    return Settings(data_dir=tmp_path / "data", chroma_host=host, chroma_port=port)


def test_add_refuse_readd_remove(settings, tmp_path, embedder):
    report = add_file(settings, UPLOADS / "beehives.bib", embedder=embedder)
    assert (report.new, report.skipped_records) == (3, 0)
    assert (upload_dir(settings) / "beehives.bib").is_file()
    assert list_sources(settings) == {"beehives.bib": 3}
    pipeline = build_pipeline(settings, embedder=embedder)
    assert pipeline.answer(BEES).citations

    # Refused: nothing indexed, nothing kept.
    gz = tmp_path / "notes.txt.gz"
    gz.write_bytes(gzip.compress(b"no papers here\n"))
    empty = tmp_path / "empty.ris"
    empty.write_text("", encoding="utf-8")
    cases = [(UPLOADS / "broken.bib.gz", "broken.bib.gz", "not a gzip file"),
             (gz, "notes.txt.gz", "nothing was indexed"),
             (empty, "empty.ris", "empty file"),
             (UPLOADS / "beehives.bib", "paper.pdf", "not a paper file type"),
             (UPLOADS / "beehives.bib", ".hidden.bib", "not a usable file name")]
    for path, name, reason in cases:
        with pytest.raises(ConfigError, match=reason):
            add_file(settings, path, name, embedder=embedder)
        assert not (upload_dir(settings) / name).exists()
    small = settings.with_overrides({"ui_max_upload_bytes": 100})
    with pytest.raises(ConfigError, match="over the upload limit of 100"):
        add_file(small, UPLOADS / "beehives.bib", embedder=embedder)
    assert list_sources(settings) == {"beehives.bib": 3}
    assert sorted(p.name for p in upload_dir(settings).iterdir() if p.is_file()) == ["beehives.bib"]

    again = add_file(settings, UPLOADS / "beehives.bib", embedder=embedder)
    assert (again.new, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 3, 0)

    # A second file, then the first removed: only its papers go, from both retrievers.
    other = tmp_path / "other.jsonl"
    other.write_text('{"title": "Sheep Counting with Drones", "abstract": "We count sheep on hillsides from '
                     'drone footage with a detector trained on 500 annotated flights."}\n', encoding="utf-8")
    add_file(settings, other, embedder=embedder)
    assert remove(settings, "beehives.bib") == 3
    assert list_sources(settings) == {"other.jsonl": 1}
    assert not (upload_dir(settings) / "beehives.bib").exists()
    after = pipeline.retrieve("honeybee hive acoustics swarming varroa", k=10)
    assert [s.title for s in after] == ["Sheep Counting with Drones"]
    with pytest.raises(ConfigError, match="no source named 'beehives.bib'"):
        remove(settings, "beehives.bib")


def test_names():
    assert checked_name("C:\\Users\\me\\My Library.bib") == "My Library.bib"
    assert checked_name("/tmp/gradio/abc/papers.jsonl.gz") == "papers.jsonl.gz"
    for bad in ("", "..", ".bib", "x.pdf", "a<b>.bib"):
        with pytest.raises(ConfigError):
            checked_name(bad)


def test_upload_keeps_a_copy(tmp_path, embedder):
    """The upload path is the caller's (Gradio's temporary file); the index's copy is its own."""
    s = Settings(data_dir=tmp_path / "data")
    src = tmp_path / "incoming" / "beehives.bib"
    src.parent.mkdir()
    shutil.copy(UPLOADS / "beehives.bib", src)
    add_file(s, src, embedder=embedder)
    src.unlink()
    assert (upload_dir(s) / "beehives.bib").read_bytes() == (UPLOADS / "beehives.bib").read_bytes()
