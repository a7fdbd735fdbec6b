"""What a new user waits for after `make setup`: `rag ingest` of the bundled corpus into a fresh
data directory, `rag ui` until it prints its URL, and a first answer (a cold `rag ask`).

Each run is a set of real `rag` processes with their own fresh data directory; the model cache
is the one `make setup` leaves (model assembled, ONNX export done), as after an install. The
baseline is the same with RAG_SHIPPED_VECTORS=false (every chunk embedded, as before vectors
were shipped), interleaved run by run with the shipped variant so load from elsewhere hits
both alike.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.measure import VENV_BIN, bench_env, run_process, summary

QUESTION = "Which papers bridge CNNs and ViTs?"
URL_LINE = "Chat UI running at"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until_url(env: dict, timeout: float = 900) -> float:
    """Seconds from starting `rag ui` to its URL line; the server is stopped after."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(VENV_BIN / "rag"), "ui", "--port", str(_free_port())], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if URL_LINE in line:
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                break
        raise RuntimeError(f"`rag ui` printed no URL (exit {proc.poll()})")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def once(model: str, shipped: bool) -> dict:
    """One newcomer's seconds: ingest, UI start to URL, install done to URL and to a first answer."""
    data = Path(tempfile.mkdtemp(prefix="bench-newcomer-"))
    env = bench_env(RAG_DATA_DIR=str(data), RAG_EMBED_MODEL=model, RAG_SHIPPED_VECTORS=str(shipped).lower())
    try:
        ingest = run_process([str(VENV_BIN / "rag"), "ingest", "--quiet"], env=env, timeout=3600)
        if ingest.returncode != 0:
            raise RuntimeError(f"rag ingest failed ({ingest.returncode}):\n{ingest.stderr[-2000:]}")
        url = _until_url(env)
        ask = run_process([str(VENV_BIN / "rag"), "ask", QUESTION], env=env)
        if ask.returncode != 0:
            raise RuntimeError(f"rag ask failed ({ask.returncode}):\n{ask.stderr[-2000:]}")
        return {"ingest_seconds": ingest.seconds, "ui_url_seconds": url,
                "install_to_url_seconds": ingest.seconds + url, "first_answer_seconds": ingest.seconds + ask.seconds}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def newcomer_section(model: str, backend: str, reps: int = 3, baseline: bool = True) -> dict:
    runs: dict[str, list[dict]] = {"shipped": [], "baseline": []}
    for _ in range(reps):
        runs["shipped"].append(once(model, shipped=True))
        if baseline:
            runs["baseline"].append(once(model, shipped=False))

    def summed(rows: list[dict]) -> dict:
        return {k: summary([r[k] for r in rows], 3) for k in rows[0]} if rows else {}

    return {"model": model, "backend": backend, "reps": reps,
            "shipped": summed(runs["shipped"]), "baseline": summed(runs["baseline"])}
