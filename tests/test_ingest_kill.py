"""Crash safety: `rag ingest` killed with SIGKILL at six different points, then re-run to
completion, leaves exactly the right papers and chunks: no duplicate, no orphan, no
half-written paper, and the index answers.

Kill points are found by watching the process's own progress bar on stderr (chunks embedded
and stored so far in this run), plus one kill during start-up; a small batch
(`--batch-papers 2`) gives many commit points.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time

from conftest import VENV_BIN, rag_env
from rag.chunking import Chunker
from rag.corpus import load_papers
from rag.embedding import TokenCounter
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.store import Store, open_client

# ingest's bar (papers read, of a total counted first), not the model loader's
_BAR = re.compile(r"ingesting: +\d+%\|[^|]*\| *(\d+)/(\d+) \[")


class Run:
    """A `rag ingest` subprocess whose progress bar is read as it is drawn."""

    def __init__(self, args: list[str], env: dict[str, str], cwd):
        self.proc = subprocess.Popen([str(VENV_BIN / "rag"), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = b""
        self.done = None  # papers this run has read and committed, from the bar; None before it shows
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while chunk := os.read(self.proc.stderr.fileno(), 4096):
            self.err += chunk
            found = _BAR.findall(self.err[-1000:].decode(errors="replace"))
            if found:
                self.done = int(found[-1][0])

    def kill_when(self, ready, timeout: float = 600) -> int | None:
        """SIGKILL as soon as `ready(self)` holds; asserts the run had not finished by then."""
        deadline = time.monotonic() + timeout
        while not ready(self):
            assert self.proc.poll() is None, f"finished before the kill point: {self.err.decode()[-500:]}"
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.01)
        at = self.done
        assert self.proc.poll() is None, "finished before the kill point"
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(60) == -signal.SIGKILL
        self._reader.join(10)
        return at


def after_seconds(seconds: float):
    t0 = time.monotonic()
    return lambda run: time.monotonic() - t0 > seconds


def papers_done(n: int):
    return lambda run: run.done is not None and run.done >= n


def seconds_after_first_batch(seconds: float):
    first: list[float] = []

    def ready(run) -> bool:
        if not run.done:
            return False
        first[:] = first or [time.monotonic()]
        return time.monotonic() - first[0] > seconds

    return ready


def stats(data_dir, cwd) -> dict | None:
    out = subprocess.run([str(VENV_BIN / "rag"), "stats", "--json"], env=rag_env(data_dir), cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    if out.returncode == 2 and "run `rag ingest` first" in out.stderr:
        return None  # killed before the collections existed
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_sigkill_at_six_points_then_rerun(tmp_path, real_papers, write_corpus, embedder, capsys):
    papers = real_papers[200:240]
    corpus = write_corpus(tmp_path / "corpus.jsonl", papers)
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    chunker = Chunker(TokenCounter(settings.embed_model), settings.chunk_size, settings.chunk_overlap)
    expected_papers, _ = load_papers([corpus])
    expected = {c.chunk_id: c for p in expected_papers for c in chunker.chunks(p)}
    assert len(expected_papers) == 40 and len(expected) >= 45

    plan = [
        ("1 s into start-up", lambda: after_seconds(1.0)),
        ("bar drawn, first batch embedding", lambda: papers_done(0)),
        ("2 papers done", lambda: papers_done(2)),
        ("6 papers done", lambda: papers_done(6)),
        ("0.4 s after the first committed batch", lambda: seconds_after_first_batch(0.4)),
        ("10 papers done", lambda: papers_done(10)),
    ]
    args = ["ingest", "--batch-papers", "2", str(corpus)]
    log = []
    for name, make_ready in plan:
        run = Run(args, rag_env(data), tmp_path)
        at = run.kill_when(make_ready())
        state = stats(data, tmp_path)
        log.append((name, at, state and (state["papers"], state["chunks"])))
        if state:
            assert state["papers"] <= 40 and state["chunks"] <= len(expected)
    assert len(log) >= 5

    final = subprocess.run([str(VENV_BIN / "rag"), *args, "--quiet"], env=rag_env(data), cwd=tmp_path,
                           capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr
    m = re.search(r"new (\d+), updated (\d+), unchanged (\d+)", final.stdout)
    new, updated, unchanged = map(int, m.groups())
    assert updated == 0 and new + unchanged == 40
    assert unchanged == (log[-1][2][0] if log[-1][2] else 0)  # committed papers were kept, not redone
    assert "index: 40 papers" in final.stdout

    again = subprocess.run([str(VENV_BIN / "rag"), "ingest", "--quiet", str(corpus)], env=rag_env(data),
                           cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert "new 0, updated 0, unchanged 40" in again.stdout and "chunks embedded 0," in again.stdout

    store = Store(open_client(settings), settings.embed_model, create=False)
    got = store.chunks.get(include=["documents", "metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == len(expected)  # no duplicate, no orphan
    assert set(got["ids"]) == set(expected)
    for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
        assert (doc, meta["paper_id"], meta["index"]) == (expected[cid].text, expected[cid].paper_id,
                                                         expected[cid].index)
    # The lexical index holds exactly the same chunks: none lost, no phantom of a killed batch.
    from rag.lexical_store import open_lexical

    assert open_lexical(store).chunk_ids() == {cid: c.paper_id for cid, c in expected.items()}
    stored = store.records()
    assert sorted(pid for pid, _ in stored) == sorted(p.paper_id for p in expected_papers)
    by_id = {p.paper_id: p for p in expected_papers}
    for pid, fields in stored:
        assert fields["abstract"] == by_id[pid].abstract
        assert fields["n_chunks"] == len(chunker.chunks(by_id[pid]))

    pipe = build_pipeline(settings, embedder=embedder)
    for p in (expected_papers[0], expected_papers[17], expected_papers[39]):
        a = pipe.answer(p.title)
        assert not a.abstained and p.paper_id in [c.paper_id for c in a.citations]

    with capsys.disabled():
        print("\n[kill] " + "; ".join(f"{name}: bar at {at}, then (papers, chunks) = {st}" for name, at, st in log)
              + f"; completion run: new {new}, unchanged {unchanged}")
