"""Shared fixtures: the real embedder, a real index of the bundled corpus, a real Chroma server.

Everything is written under pytest's temporary directories. The bundled index is built once
per test session (about a minute of embedding). To iterate faster locally, point
RAG_TEST_INDEX_CACHE at a directory: the first run builds the index there and later runs copy
it instead of re-embedding (CI leaves it unset and builds from scratch).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.embedding import Embedder  # noqa: E402
from rag.settings import BUNDLED_CORPUS, Settings  # noqa: E402

# Tests never read the developer's RAG_* environment: every Settings is built explicitly.
for _key in [k for k in os.environ if k.startswith("RAG_") and k != "RAG_TEST_INDEX_CACHE"]:
    del os.environ[_key]
os.environ.pop("OPENAI_API_KEY", None)

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One real all-MiniLM-L6-v2 for the whole session (loading it costs seconds)."""
    emb = Embedder("all-MiniLM-L6-v2")
    emb.model  # load now, not inside the first timed call
    return emb


def _build_bundled(data_dir: Path, embedder: Embedder) -> None:
    from rag.ingest import ingest
    from rag.store import Store, open_client

    s = Settings(data_dir=data_dir)
    store = Store(open_client(s), s.embed_model)
    report = ingest([BUNDLED_CORPUS], s, store, embedder=embedder)
    assert report.distinct == 555, report.summary()


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory, embedder) -> Settings:
    """Settings whose data_dir holds a complete index of the bundled corpus. Read-only:
    tests that modify an index must build their own."""
    data_dir = tmp_path_factory.mktemp("bundled-index")
    cache = os.environ.get("RAG_TEST_INDEX_CACHE")
    if cache:
        cache_dir = Path(cache)
        if not (cache_dir / "chroma" / "chroma.sqlite3").exists():
            _build_bundled(cache_dir, embedder)
        shutil.copytree(cache_dir, data_dir, dirs_exist_ok=True)
    else:
        _build_bundled(data_dir, embedder)
    return Settings(data_dir=data_dir)


@pytest.fixture(scope="session")
def pipeline(bundled_settings, embedder):
    """The real pipeline over the bundled index, shared by the tests of one session."""
    from rag.pipeline import build_pipeline

    return build_pipeline(bundled_settings, embedder=embedder)


@pytest.fixture
def chroma_server(tmp_path):
    """A real `chroma run` server on a free loopback port; yields (host, port)."""
    port = free_port()
    log = open(tmp_path / "chroma-server.log", "wb")
    proc = subprocess.Popen(
        [str(VENV_BIN / "chroma"), "run", "--path", str(tmp_path / "chroma-server-data"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 60, proc)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
