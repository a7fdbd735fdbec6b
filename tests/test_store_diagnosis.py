"""The store says what is actually wrong, and following its advice never loses an index.

Real stores, the real `rag` command: a read-only store (the immutable flag, which binds root
too), a zero-byte database, a missing data directory, a full disk (a small tmpfs).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rag.ingest import ingest
from rag.settings import Settings
from rag.store import Store, open_client

N = 5


@pytest.fixture
def small_index(tmp_path, embedder, real_papers, write_corpus) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    corpus = write_corpus(tmp_path / "five.jsonl", real_papers[:N])
    ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    return s


def _chattr(flag: str, *paths: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True).returncode == 0


@pytest.fixture
def immutable():
    """`immutable(*paths)` makes paths unwritable even for root; undone after the test."""
    done: list[Path] = []

    def make(*paths: Path) -> None:
        if not _chattr("+i", *paths):
            pytest.skip("chattr +i is not available here")
        done.extend(paths)

    yield make
    if done:
        _chattr("-i", *done)


def _one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("rag: error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


def test_read_only_store_still_answers_and_rebuild_keeps_it(small_index, immutable, rag_cli, real_papers,
                                                             write_corpus, tmp_path):
    store_dir = small_index.data_dir / "chroma"
    before = sorted((p.name, p.stat().st_size) for p in store_dir.rglob("*") if p.is_file())
    immutable(store_dir / "chroma.sqlite3", store_dir)

    stats = rag_cli("stats", "--json", data_dir=small_index.data_dir)
    assert stats.returncode == 0, stats.stderr
    assert '"papers": 5' in stats.stdout and "read-only" in stats.stdout
    asked = rag_cli("ask", real_papers[2].title, "--json", data_dir=small_index.data_dir)
    assert asked.returncode == 0, asked.stderr
    assert real_papers[2].paper_id in asked.stdout

    corpus = write_corpus(tmp_path / "three.jsonl", real_papers[10:13])
    for args in (("ingest", "--quiet", str(corpus)), ("ingest", "--rebuild", "--quiet", str(corpus))):
        err = _one_line_error(rag_cli(*args, data_dir=small_index.data_dir))
        assert "read-only" in err and "damaged" not in err and "--rebuild" not in err
    assert sorted((p.name, p.stat().st_size) for p in store_dir.rglob("*") if p.is_file()) == before

    _chattr("-i", store_dir / "chroma.sqlite3", store_dir)
    rebuilt = rag_cli("ingest", "--rebuild", "--quiet", str(corpus), data_dir=small_index.data_dir)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "index: 8 papers" in rebuilt.stdout  # the recorded five.jsonl is re-read, never dropped


def test_zero_byte_database_is_damage_not_a_new_index(small_index, rag_cli):
    store_dir = small_index.data_dir / "chroma"
    (store_dir / "chroma.sqlite3").write_bytes(b"")
    segments = sorted(p.name for p in store_dir.iterdir() if p.is_dir())
    for args in (("stats",), ("ask", "What is CvT?")):
        err = _one_line_error(rag_cli(*args, data_dir=small_index.data_dir))
        assert "damaged" in err and "empty" in err and "--rebuild" in err
    assert (store_dir / "chroma.sqlite3").stat().st_size == 0  # left as found
    assert sorted(p.name for p in store_dir.iterdir() if p.is_dir()) == segments


def test_stats_creates_no_data_directory(tmp_path, rag_cli):
    missing = tmp_path / "nothing-here"
    err = _one_line_error(rag_cli("stats", data_dir=missing))
    assert "run `rag ingest` first" in err
    assert not missing.exists()


def test_ask_creates_no_data_directory(tmp_path, rag_cli):
    missing = tmp_path / "nothing-here"
    err = _one_line_error(rag_cli("ask", "What is CvT?", data_dir=missing))
    assert "run `rag ingest` first" in err
    assert not missing.exists()


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs at tmp_path/disk (root only); unmounted after the test."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_says_so_and_loses_nothing(small_disk, rag_cli, real_papers, write_corpus, tmp_path):
    data = small_disk / "data"
    first = write_corpus(tmp_path / "first.jsonl", real_papers[:N])
    done = rag_cli("ingest", "--quiet", str(first), data_dir=data)
    assert done.returncode == 0, done.stderr
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    # Room to start (the up-front check wants 1 MiB), not to finish: it fails mid-ingest.
    filler.write_bytes(b"\0" * max(free - 1536 * 1024, 0))

    more = write_corpus(tmp_path / "more.jsonl", real_papers[N:N + 60])
    err = _one_line_error(rag_cli("ingest", "--quiet", str(more), data_dir=data))
    assert "disk full" in err
    for args in (("stats",), ("ask", real_papers[1].title)):
        out = rag_cli(*args, data_dir=data)
        assert out.returncode == 0 or "disk full" in _one_line_error(out), out.stderr

    filler.unlink()
    again = rag_cli("ingest", "--quiet", str(more), data_dir=data)
    assert again.returncode == 0, again.stderr
    assert f"index: {N + 60} papers" in again.stdout


def _fill(disk: Path) -> None:
    """Write to `disk` until not one more byte fits."""
    with (disk / "filler").open("wb", buffering=0) as fh:
        for block in (65536, 512, 1):
            try:
                while True:
                    fh.write(b"\0" * block)
            except OSError:
                pass


def test_a_full_disk_is_one_line_for_stats_ask_and_ui(small_disk, rag_cli, real_papers, write_corpus, tmp_path):
    """Issue 28, item 8, and issue 30, item 6: with not one byte free, `rag stats`, `rag ask`
    and `rag ui` answer or say "disk full" in one line; none prints a traceback."""
    from conftest import free_port

    data = small_disk / "data"
    corpus = write_corpus(tmp_path / "first.jsonl", real_papers[:N])
    assert rag_cli("ingest", "--quiet", str(corpus), data_dir=data).returncode == 0
    (small_disk / "room").write_bytes(b"\0" * max(shutil.disk_usage(small_disk).free - 1536 * 1024, 0))
    more = write_corpus(tmp_path / "more.jsonl", real_papers[N:N + 60])
    assert "disk full" in _one_line_error(rag_cli("ingest", "--quiet", str(more), data_dir=data))
    _fill(small_disk)  # the failed ingest left logs that Chroma applies at the next open: no room for them
    for args in (("stats",), ("ask", real_papers[1].title), ("ui", "--port", str(free_port()))):
        try:
            out = rag_cli(*args, data_dir=data, timeout=240)
        except subprocess.TimeoutExpired as served:  # the UI came up and kept serving: no error to show
            assert "Traceback" not in (served.stderr or b"").decode(errors="replace")
            continue
        assert "Traceback" not in out.stderr, out.stderr
        assert out.returncode == 0 or "disk full" in _one_line_error(out), out.stderr


def test_a_chroma_server_that_is_down_is_unreachable_not_damaged(tmp_path, embedder, real_papers, write_corpus):
    """Issue 30, item 2: questions to an index whose Chroma server has stopped were told the
    index is damaged and to rebuild it."""
    from conftest import VENV_BIN, free_port, stop_process, wait_for_port
    from rag.errors import StoreError
    from rag.pipeline import build_pipeline

    port = free_port()
    server = subprocess.Popen([str(VENV_BIN / "chroma"), "run", "--path", str(tmp_path / "server"), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 60, server)
        s = Settings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=port)
        corpus = write_corpus(tmp_path / "three.jsonl", real_papers[:3])
        ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
        pipeline = build_pipeline(s, embedder=embedder)  # it checks the store before every search
        assert pipeline.retrieve(real_papers[0].title, k=1)
    finally:
        stop_process(server, 10)
    with pytest.raises(StoreError) as down:
        pipeline.retrieve(real_papers[0].title, k=1)
    message = str(down.value)
    assert "unreachable" in message and "rebuild" not in message and "damaged" not in message, message
    assert "\n" not in message
