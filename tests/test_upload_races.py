"""Uploads of one name (issues 28.6 and 30.5): a re-upload with new content replaces the old
papers, and two uploads at once, each staged under a path of its own and indexed under the
writer lock, leave the source's papers equal to the kept file's."""

from __future__ import annotations

import threading

from rag.corpus import load_papers
from rag.settings import Settings
from rag.sources import add_file, list_sources, upload_dir
from rag.store import Store, open_client


def _source_ids(s: Settings, source: str) -> set[str]:
    store = Store(open_client(s, create=False), s.embed_model, create=False)
    return set(store.papers.get(where={"source": {"$eq": source}}, include=[])["ids"])


def _file_ids(path) -> set[str]:
    return {p.paper_id for p in load_papers([path])[0]}


def test_reupload_replaces_the_old_papers(tmp_path, embedder, real_papers, write_corpus):
    s = Settings(data_dir=tmp_path / "data")
    add_file(s, write_corpus(tmp_path / "v1" / "same.jsonl", real_papers[:3]), embedder=embedder)
    report = add_file(s, write_corpus(tmp_path / "v2" / "same.jsonl", real_papers[2:4]), embedder=embedder)
    assert (report.new, report.unchanged) == (1, 1)
    assert list_sources(s) == {"same.jsonl": 2}
    assert _source_ids(s, "same.jsonl") == _file_ids(upload_dir(s) / "same.jsonl") == \
        {p.paper_id for p in real_papers[2:4]}


def test_two_uploads_of_one_name_at_once(tmp_path, embedder, real_papers, write_corpus):
    s = Settings(data_dir=tmp_path / "data")
    files = [write_corpus(tmp_path / "a" / "same.jsonl", real_papers[10:13]),
             write_corpus(tmp_path / "b" / "same.jsonl", real_papers[20:23])]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def upload(path) -> None:
        start.wait()
        try:
            add_file(s, path, embedder=embedder)
        except BaseException as err:  # noqa: BLE001 (collected for the assertion below)
            errors.append(err)

    threads = [threading.Thread(target=upload, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    kept = _file_ids(upload_dir(s) / "same.jsonl")
    assert kept in ({p.paper_id for p in real_papers[10:13]}, {p.paper_id for p in real_papers[20:23]})
    assert _source_ids(s, "same.jsonl") == kept and list_sources(s) == {"same.jsonl": 3}
    assert list((upload_dir(s) / ".staging").iterdir()) == []
