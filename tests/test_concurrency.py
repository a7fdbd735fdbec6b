"""Two `rag ingest` processes at once, on the embedded store and on a Chroma server: the
second waits for the first (saying so), and nothing either of them wrote is lost.

Before the writer lock, two ingests of different files sharing titles resolved the same
titles to the same free ids: the second overwrote the first's papers, and the source list
lost one file's entry (a read-modify-write race). The test holds the lock itself while both
start, so both are certainly waiting at the same moment, then lets them go.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace

import pytest

from conftest import VENV_BIN, rag_env
from rag.settings import Settings
from rag.store import Store, open_client
from rag.writer_lock import writer_lock

N = 6


def _start(corpus, settings: Settings, tmp_path, name: str) -> tuple[subprocess.Popen, object]:
    env = {"RAG_DATA_DIR": str(settings.data_dir)}
    if settings.uses_server:
        env |= {"RAG_CHROMA_HOST": settings.chroma_host, "RAG_CHROMA_PORT": str(settings.chroma_port)}
    err = open(tmp_path / f"{name}.err", "w+")
    proc = subprocess.Popen([str(VENV_BIN / "rag"), "ingest", "--quiet", "--batch-papers", "2", str(corpus)],
                            cwd=tmp_path, env=rag_env(**env), stdout=subprocess.PIPE, stderr=err, text=True)
    return proc, err


def _wait_for(files, text: str, procs, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(text in (tmp.seek(0) or tmp.read()) for tmp in files):
            return True
        if any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.3)
    return False


def _two_ingests(settings: Settings, tmp_path, real_papers, write_corpus):
    first = write_corpus(tmp_path / "first.jsonl", real_papers[:N])
    # The same titles with other abstracts: by another file, so new `-v2` versions, not edits.
    others = [replace(p, abstract=real_papers[N + i].abstract) for i, p in enumerate(real_papers[:N])]
    second = write_corpus(tmp_path / "second.jsonl", others)
    client = open_client(settings) if settings.uses_server else None
    with writer_lock(settings, client, on_wait=lambda where: None):
        runs = [_start(first, settings, tmp_path, "first"), _start(second, settings, tmp_path, "second")]
        procs, errs = [r[0] for r in runs], [r[1] for r in runs]
        both_waited = _wait_for(errs, "another ingest is writing to", procs)
    for proc in procs:
        proc.wait(600)
    texts = [(e.seek(0) or e.read()) for e in errs]
    assert both_waited, texts
    assert [p.returncode for p in procs] == [0, 0], texts
    store = Store(open_client(settings), settings.embed_model, create=False)
    rows = store.records()
    assert len(rows) == 2 * N
    assert sorted(f["abstract"] for _, f in rows) == sorted([p.abstract for p in real_papers[:2 * N]])
    assert store.sources() == {"first.jsonl": N, "second.jsonl": N}
    assert all(json.dumps(t).count("Traceback") == 0 for t in texts)


def test_concurrent_ingests_embedded(tmp_path, real_papers, write_corpus):
    _two_ingests(Settings(data_dir=tmp_path / "data"), tmp_path, real_papers, write_corpus)


@pytest.mark.chroma_server
def test_concurrent_ingests_server(chroma_server, tmp_path, real_papers, write_corpus):
    host, port = chroma_server
    s = Settings(data_dir=tmp_path / "data", chroma_host=host, chroma_port=port)
    _two_ingests(s, tmp_path, real_papers, write_corpus)
