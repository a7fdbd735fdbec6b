"""An ingest's progress, seen from another process: `rag.ingest_status` and the UI's header.

A real ingest (real Chroma under tmp_path, the real embedder) publishes its progress while it
embeds and removes it when it ends; a record left by a process that died shows nothing; the
UI's header shows the line of an ingest that is running.
"""

from __future__ import annotations

import subprocess
import sys

from rag import ingest_status
from rag.ingest import ingest
from rag.settings import Settings
from rag.store import Store, open_client


def test_a_running_ingest_publishes_its_progress_then_removes_it(tmp_path, real_papers, write_corpus,
                                                                  counting_embedder):
    path = write_corpus(tmp_path / "p.jsonl", real_papers[:6])
    s = Settings(data_dir=tmp_path / "data")
    seen = []

    class Watching(type(counting_embedder)):
        def embed(self, texts, progress=False):
            seen.append(ingest_status.read(s.data_dir))  # what a UI beside this ingest reads now
            return super().embed(texts, progress)

    store = Store(open_client(s), s.embed_model)
    ingest([path], s, store, embedder=Watching(counting_embedder.inner), batch_papers=3, progress=True)
    assert [(st.done, st.total) for st in seen] == [(0, 6), (3, 6)]  # one embed call per batch of 3
    assert seen[-1].line == "indexing: 3 of 6 papers"
    assert ingest_status.read(s.data_dir) is None
    assert not (s.data_dir / ingest_status.FILE).exists()


def test_a_dead_ingests_record_shows_nothing(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ingest_status.FILE).write_text(f'{{"done": 1, "total": 2, "pid": {int(dead.stdout)}}}')
    assert ingest_status.read(tmp_path) is None
    ingest_status.write(tmp_path, 5, None)
    assert ingest_status.read(tmp_path).line == "indexing: 5 papers"


def _header(app) -> str:
    return next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "header").value


def test_the_ui_header_shows_a_running_ingest(tmp_path, pipeline):
    from ui.app import build_app

    ingest_status.write(tmp_path, 256, 555)  # this process: alive
    assert "indexing: 256 of 555 papers" in _header(build_app(Settings(data_dir=tmp_path), pipeline))
    ingest_status.clear(tmp_path)
    assert "indexing" not in _header(build_app(Settings(data_dir=tmp_path), pipeline))
