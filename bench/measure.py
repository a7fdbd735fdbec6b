"""Timing, percentiles, peak memory and machine facts shared by the benchmarks.

Peak memory is the kernel's own high-water mark of resident memory: `getrusage` for this
process, `os.wait4` for a child (so each child gets its own figure, unlike RUSAGE_CHILDREN,
which is the maximum over every child ever waited for). No sampling thread, no psutil.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The question each warm measurement asks first, untimed: it loads the model and initialises
# the answer path.
WARM_UP_QUESTION = "Which methods make neural networks smaller and faster at inference time?"


def bench_settings(data_dir: Path, corpus: Path, **extra):
    """Settings of a benchmark's own index. No shipped vectors: the build times the embedder
    (the newcomer section times them)."""
    from rag.settings import Settings

    return Settings(data_dir=data_dir, corpus_paths=[corpus], shipped_vectors=False, **extra)

VENV_BIN = Path(sys.executable).parent
# The checkout: the benchmarks run from a clone (they are not part of the installed package).
ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def summary(values: list[float], digits: int = 4) -> dict:
    """Median and spread of repeated measurements, in their unit.

    `summary([1, 2, 3, 4])` -> `{"n": 4, "median": 2.5, "p50": 2.5, "p95": 3.85, "min": 1, "max": 4}`
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"n": 0}
    r = lambda x: round(float(x), digits)  # noqa: E731
    return {"n": int(arr.size), "median": r(np.median(arr)), "p50": r(np.percentile(arr, 50)),
            "p95": r(np.percentile(arr, 95)), "min": r(arr.min()), "max": r(arr.max())}


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory, MiB (ru_maxrss is KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb(pid: int | str = "self") -> float:
    """Current resident memory of a process (this one by default), MiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


@dataclass
class Run:
    """One child process: wall time from spawn to exit, its own peak RSS, and its output."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_process(argv: list[str], env: dict | None = None, cwd: Path | None = None, timeout: float = 900) -> Run:
    """Run `argv` to completion and measure it. Output goes to files, not pipes, so a chatty
    child can never block on a full pipe while we wait for it."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, round(usage.ru_maxrss / 1024, 1), proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def bench_env(**overrides: str) -> dict:
    """The environment children run in: offline, no telemetry, quiet tokenizers."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
                "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_ENABLED": "False"})
    env.update(overrides)
    return env


def machine() -> dict:
    """What the figures were measured on; the load average says how busy the machine was."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except FileNotFoundError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(), "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


FALLBACK_QUESTIONS = [
    "Which papers use vision transformers?", "How can neural networks be compressed?",
    "What methods improve image segmentation?", "Which papers study language models?",
    "How is self-supervised learning used for images?", "Which papers detect objects in images?",
    "What datasets are introduced for medical imaging?", "Which papers work on speech?",
]


def load_questions(path: Path) -> list[str]:
    """The `question` fields of a JSON Lines file, or a fixed generic list if there are none."""
    found = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                question = json.loads(line).get("question")
                if isinstance(question, str) and question.strip():
                    found.append(question)
    return found or list(FALLBACK_QUESTIONS)
