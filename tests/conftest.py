"""Shared fixtures: the real embedder, a real index of the bundled corpus, a real Chroma server,
and the test tiers (markers added from the fixtures each test uses).

Everything is written under pytest's temporary directories. Two models, said explicitly:
plumbing tests (`embedder`, `bundled_settings`, `pipeline`) index with PLUMBING_MODEL, the
small all-MiniLM-L6-v2, whatever the default is (RAG_EMBED_MODEL is set to it for the session,
so a Settings or a `rag` subprocess that names no model gets it); the eval gate
(`default_pipeline`) runs the default configuration, DEFAULT_MODEL, over an index of its own model (the same
data directory: each model has its own collections, so when the default is the small model
nothing is embedded twice). Each bundled index is built once per test session (MiniLM about a
minute of embedding, all-mpnet-base-v2 about 5x). To iterate faster locally, point
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

from rag.embedding import Embedder, model_slug  # noqa: E402
from rag.settings import BUNDLED_CORPUS, Settings  # noqa: E402

# Where tests/test_ui_browser.py saves the README's screenshot (docs/chat.png) when set; not a
# setting, so it is taken out of the environment with the rest.
SCREENSHOT_OUT = os.environ.get("RAG_SCREENSHOT_OUT")
# Tests never read the developer's RAG_* environment: every Settings is built explicitly.
for _key in [k for k in os.environ if k.startswith("RAG_") and k != "RAG_TEST_INDEX_CACHE"]:
    del os.environ[_key]
os.environ.pop("OPENAI_API_KEY", None)

VENV_BIN = Path(sys.executable).parent
PLUMBING_MODEL = "all-MiniLM-L6-v2"  # the index plumbing tests use: the fast model, not the default
DEFAULT_MODEL = Settings.model_fields["embed_model"].default  # what users get: the eval gate's model
# Plumbing tests build Settings (and run `rag` subprocesses) without naming a model: they get
# the fast one. Tests of the defaults themselves delete this, and the eval gate names DEFAULT_MODEL.
os.environ["RAG_EMBED_MODEL"] = PLUMBING_MODEL
# Plumbing tests count what ingest embeds, so they take no vector from the file shipped for the
# bundled corpus (rag.shipped); the bundled-index fixtures use it, as `rag ingest` does.
os.environ["RAG_SHIPPED_VECTORS"] = "false"

# Test tiers (markers in pyproject.toml; `make test-fast` deselects them all). A test gets its
# tier from the fixtures it uses, directly or through another fixture, so it cannot be forgotten.
TIER_OF_FIXTURE = {
    "bundled_settings": "slow",  # the session index of the bundled corpus (`pipeline` uses it)
    "default_settings": "slow",  # the same, for the default model (`default_pipeline`, the eval gate)
    "embedder": "slow",  # the real model: its users embed, mostly to build a small index
    "write_corpus": "slow",  # a corpus written to be ingested
    "chroma_server_process": "chroma_server",
    "browser": "browser",
    "llamacpp_url": "llamacpp",
}


def pytest_collection_modifyitems(items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in TIER_OF_FIXTURE.items():
            if fixture in used:
                item.add_marker(marker)


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


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    """Terminate a server the tests started; kill it if it ignores that for `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One real PLUMBING_MODEL (all-MiniLM-L6-v2) for the whole session (loading it costs seconds)."""
    emb = Embedder(PLUMBING_MODEL)
    _ = emb.model  # the property loads it: now, not inside the first timed call
    return emb


def _build_bundled(data_dir: Path, model: str, embedder: Embedder) -> None:
    from rag.ingest import ingest
    from rag.store import Store, open_client

    s = Settings(data_dir=data_dir, embed_model=model, shipped_vectors=True)
    store = Store(open_client(s), s.embed_model)
    report = ingest([BUNDLED_CORPUS], s, store, embedder=embedder)
    assert report.distinct == 555, report.summary()


def _bundled_index(tmp_path_factory, model: str, embedder: Embedder) -> Settings:
    """Settings for `model` whose data_dir holds a complete index of the bundled corpus, built
    once per session in one shared directory (per model collections) or copied from
    RAG_TEST_INDEX_CACHE, where a marker file says which models are complete."""
    data_dir = tmp_path_factory.getbasetemp() / "bundled-index"
    marker = data_dir / f".complete-{model_slug(model)}"
    if not marker.exists():
        cache = os.environ.get("RAG_TEST_INDEX_CACHE")
        cached = Path(cache) / marker.name if cache else None
        if cached and not cached.exists() and model == PLUMBING_MODEL and _unmarked_cache(cached.parent):
            cached.touch()  # a cache from before the markers held the plumbing model's index only
        if cached and cached.exists():
            shutil.copytree(cached.parent, data_dir, dirs_exist_ok=True)
        else:
            data_dir.mkdir(exist_ok=True)
            _build_bundled(data_dir, model, embedder)  # incremental: other models' collections stay
            marker.touch()
            if cache:
                shutil.copytree(data_dir, cache, dirs_exist_ok=True)
    return Settings(data_dir=data_dir, embed_model=model)


def _unmarked_cache(cache: Path) -> bool:
    return (cache / "chroma" / "chroma.sqlite3").exists() and not any(cache.glob(".complete-*"))


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory, embedder) -> Settings:
    """Settings (embed_model PLUMBING_MODEL) whose data_dir holds a complete index of the
    bundled corpus. Read-only: tests that modify an index must build their own."""
    return _bundled_index(tmp_path_factory, PLUMBING_MODEL, embedder)


@pytest.fixture(scope="session")
def pipeline(bundled_settings, embedder):
    """The real pipeline over the bundled index, shared by the tests of one session."""
    from rag.pipeline import build_pipeline

    return build_pipeline(bundled_settings, embedder=embedder)


@pytest.fixture(scope="session")
def default_embedder(embedder) -> Embedder:
    """The default configuration's model (DEFAULT_MODEL); the plumbing embedder
    when that is the same model."""
    model = DEFAULT_MODEL
    if model_slug(model) == model_slug(PLUMBING_MODEL):
        return embedder
    emb = Embedder(model)
    _ = emb.model
    return emb


@pytest.fixture(scope="session")
def default_settings(tmp_path_factory, default_embedder) -> Settings:
    """Settings with every default (the default model's per-model values) over an index of the
    bundled corpus built with the default model. Read-only."""
    return _bundled_index(tmp_path_factory, DEFAULT_MODEL, default_embedder)


@pytest.fixture(scope="session")
def default_pipeline(default_settings, default_embedder):
    """The real pipeline of the default configuration (the eval gate's)."""
    from rag.pipeline import build_pipeline

    return build_pipeline(default_settings, embedder=default_embedder)


@pytest.fixture(scope="session")
def chroma_server_process(tmp_path_factory):
    """One real `chroma run` server on a free loopback port for the whole session (starting
    one costs seconds); yields (host, port). Tests use `chroma_server`, which empties it."""
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = open(root / "chroma-server.log", "wb")
    proc = subprocess.Popen(
        [str(VENV_BIN / "chroma"), "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 60, proc)
        yield "127.0.0.1", port
    finally:
        stop_process(proc, 10)
        log.close()


@pytest.fixture
def chroma_server(chroma_server_process):
    """The session's Chroma server with every collection dropped first, so a test sees only
    what it writes itself; yields (host, port)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    host, port = chroma_server_process
    client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    return host, port


# --- added for the corpus/ingest/store/CLI/reliability tests ------------------------------

class CountingEmbedder:
    """A thin spy around the real `Embedder`: same vectors, plus how often it was asked."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.calls = 0  # embed() calls, queries included
        self.texts = 0  # texts embedded

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def model(self):
        return self.inner.model

    def embed(self, texts, progress: bool = False):
        self.calls += 1
        self.texts += len(texts)
        return self.inner.embed(texts, progress)

    def embed_query(self, text: str):
        return self.embed([text])[0]


@pytest.fixture
def counting_embedder(embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture(scope="session")
def real_papers():
    """The bundled corpus's 555 distinct papers, parsed (nothing embedded)."""
    from rag.corpus import load_papers

    papers, _ = load_papers([BUNDLED_CORPUS])
    return papers


@pytest.fixture
def write_corpus():
    """`write_corpus(path, papers)` writes papers as JSON Lines (title, abstract and any
    extra fields given per paper in `extra`) and returns the path."""
    import json

    def write(path: Path, papers, extra: dict | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        for p in papers:
            row = {"title": p.title, "abstract": p.abstract}
            row.update((extra or {}).get(p.title, {}))
            rows.append(json.dumps(row, ensure_ascii=False))
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path

    return write


def rag_env(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment a user's shell would give `rag`: no RAG_* or OpenAI settings from the
    developer, offline, the data dir given, and the plumbing model (the bundled test index's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "OPENAI_API_KEY"}
    env["RAG_EMBED_MODEL"] = PLUMBING_MODEL
    env["RAG_SHIPPED_VECTORS"] = "false"  # as in this process: plumbing tests count what ingest embeds
    if data_dir is not None:
        env["RAG_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


@pytest.fixture
def rag_cli(tmp_path):
    """`rag_cli(*args, data_dir=..., env={...}, timeout=...)` runs the installed `rag` entry
    point as a user would, from tmp_path, and returns the CompletedProcess (text mode)."""

    def run(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(VENV_BIN / "rag"), *args], cwd=tmp_path, env=rag_env(data_dir, **(env or {})),
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    return run
