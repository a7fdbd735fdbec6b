"""`pip install .` (not editable) into a fresh venv, then `rag ingest`, `rag ask`, `rag stats`
and `rag eval` from a directory outside the checkout, as a user would after installing.

The wheel is built from a copy of the project's files under tmp_path (building in place would
write build/ and *.egg-info into the checkout), with the setuptools already installed and no
index: the test runs offline. The fresh venv has no pip and no dependencies of its own; a
`.pth` file puts the project venv's site-packages after its own, so the dependencies resolve
without a download while `rag` itself can only come from the wheel (a `.pth` line adds a
directory, it does not run that directory's `.pth` files, so the checkout's editable-install
hook stays out). `rag.__file__` is checked to prove which copy ran.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import rag_env

pytestmark = [pytest.mark.install, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ["pyproject.toml", "README.md", "rag", "ui", "eval", "prompts"]
# What the installed package reads through importlib.resources.
PACKAGE_DATA = ["prompts/answer.md", "prompts/system.md", "rag/data/corpus/000_4a246b5c4a53f764.txt",
                "rag/abstain_models/all-minilm-l6-v2.json", "ui/static.css", "eval/questions.jsonl"]


def run(argv: list, cwd: Path, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the project's wheel installed; returns its bin/ directory."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "results", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    env = rag_env()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", tmp / "wheels", src], cwd=tmp, env=env)
    (wheel,) = (tmp / "wheels").glob("rag-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [f for f in PACKAGE_DATA if f not in names], f"package data missing from {wheel.name}"

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=env)
    python = venv / "bin" / "python"
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp, env=env)
    (Path(site.stdout.strip()) / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel],
        cwd=tmp, env=env)
    return venv / "bin"


def test_installed_package_ingests_answers_and_reports_from_another_directory(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # under /tmp, nowhere near the checkout
    elsewhere.mkdir()
    env = rag_env(tmp_path / "data")

    show = "import rag, rag.settings as s; print(rag.__file__); print(s.BUNDLED_CORPUS)"
    where = run([installed / "python", "-c", show], cwd=elsewhere, env=env).stdout.split()
    venv = installed.parent
    assert all(Path(p).is_relative_to(venv) and not Path(p).is_relative_to(ROOT) for p in where), where

    ingest = run([installed / "rag", "ingest", "--quiet"], cwd=elsewhere, env=env)
    assert "index: 555 papers" in ingest.stdout, ingest.stdout

    ask = run([installed / "rag", "ask", "Which papers bridge CNNs and ViTs?"], cwd=elsewhere, env=env)
    text, _, refs = ask.stdout.partition("\nReferences:\n")
    assert "[1]" in text and refs.startswith("[1] "), ask.stdout

    stats = run([installed / "rag", "stats"], cwd=elsewhere, env=env)
    assert "papers: 555" in stats.stdout.splitlines(), stats.stdout

    out = tmp_path / "eval-out"
    run([installed / "rag", "eval", "--limit", "2", "--out", out], cwd=elsewhere, env=env)
    assert (out / "results.json").is_file() and (out / "report.md").is_file()
    assert not any(elsewhere.iterdir()), "the installed rag wrote into its working directory"
