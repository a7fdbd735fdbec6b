"""The README's examples run as written: every ```python block in a new interpreter, every
```bash block in bash (`set -e`, so each command must succeed), each against a copy of the
bundled index (RAG_DATA_DIR), from a directory outside the checkout that holds the file the
examples ingest (`my-library.bib`, a real Zotero export). A README example that raises is a
broken promise to every first-time reader.

A block may be marked on the line above it:
- `<!-- test: needs NAME -->`: skipped until NAME (a module or a module attribute, e.g.
  `rag.Assistant`) exists, so the README can show an API another branch is adding;
- `<!-- test: skip (why) -->`: never run (it installs, or serves until interrupted).
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import VENV_BIN, rag_env

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LIBRARY = Path(__file__).parent / "fixtures" / "formats" / "zotero.bib"  # the examples' my-library.bib
BLOCK = re.compile(r"(?:^<!-- test: (?P<mark>[^\n]*?) -->\n)?^```(?P<lang>python|bash)[ \t]*\n(?P<body>.*?)^```[ \t]*$",
                   re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    lang: str  # "python" or "bash"
    body: str
    mark: str  # "" when unmarked
    line: int  # the line of its opening fence in the README

    @property
    def id(self) -> str:
        return f"{self.lang}-line{self.line}"


def examples(markdown: str) -> list[Example]:
    """The ```python and ```bash blocks of `markdown`, in order, with the mark above each.

    >>> [(e.lang, e.body, e.mark) for e in examples("x\\n<!-- test: skip -->\\n```bash\\nmake\\n```\\n")]
    [('bash', 'make\\n', 'skip')]
    """
    return [Example(m["lang"], m["body"], m["mark"] or "", markdown.count("\n", 0, m.start("body")))
            for m in BLOCK.finditer(markdown)]


def exists(name: str) -> bool:
    """Whether `name` is an importable module, or an attribute of one: `exists("rag.answer")`."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def why_skipped(example: Example) -> str | None:
    """The reason not to run `example` now, or None to run it."""
    if example.mark.startswith("skip"):
        return example.mark
    if example.mark.startswith("needs "):
        name = example.mark.removeprefix("needs ").strip()
        return None if exists(name) else f"{name} does not exist on this branch yet"
    assert not example.mark, f"README line {example.line}: unknown test mark {example.mark!r}"
    return None


README_EXAMPLES = examples(README.read_text(encoding="utf-8"))


def test_block_extraction():
    text = ("intro\n```bash\nrag ask x\n```\n<!-- test: needs rag.Assistant -->\n```python\nimport rag\n```\n"
            "```text\nnot run\n```\n```python\nlater()\n```\n")
    found = examples(text)
    assert [(e.lang, e.body, e.mark) for e in found] == [
        ("bash", "rag ask x\n", ""), ("python", "import rag\n", "needs rag.Assistant"), ("python", "later()\n", "")]
    assert [e.line for e in found] == [2, 6, 12]  # the opening fence


def test_marks():
    assert exists("rag.answer") and exists("rag") and not exists("rag.no_such_thing")
    assert not exists("no_such_module.x")
    assert why_skipped(Example("python", "", "needs rag.answer", 1)) is None
    assert why_skipped(Example("python", "", "needs rag.no_such_thing", 1)) == (
        "rag.no_such_thing does not exist on this branch yet")
    assert why_skipped(Example("bash", "", "skip (installs)", 1)) == "skip (installs)"


def test_readme_has_runnable_examples_of_each_kind():
    run = [e for e in README_EXAMPLES if not e.mark.startswith("skip")]
    assert {e.lang for e in run} == {"python", "bash"}
    assert all(not e.mark or e.mark.startswith(("skip", "needs ")) for e in README_EXAMPLES)


@pytest.mark.parametrize("example", README_EXAMPLES, ids=[e.id for e in README_EXAMPLES])
def test_readme_example_runs_as_written(example, bundled_settings, tmp_path):
    if reason := why_skipped(example):
        pytest.skip(reason)
    data = tmp_path / "index"
    shutil.copytree(bundled_settings.data_dir, data)  # examples ingest and remove: never the shared index
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(LIBRARY, work / "my-library.bib")
    env = rag_env(data)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"  # `rag` as installed
    if example.lang == "python":
        script = work / "readme_example.py"
        script.write_text(example.body, encoding="utf-8")
        command = [sys.executable, str(script)]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", example.body]
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"README line {example.line} fails:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
