"""The README's Python example runs as written: its first ```python block, executed in a new
interpreter against a copy of the bundled index (RAG_DATA_DIR), from a directory outside the
checkout. A README example that raises is a broken promise to every first-time reader."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import rag_env

README = Path(__file__).resolve().parent.parent / "README.md"


def first_python_block(markdown: str) -> str:
    """The body of the first ```python fenced block.
    `first_python_block("x\\n```python\\nprint(1)\\n```\\n")` -> `"print(1)\\n"`."""
    found = re.search(r"^```python[ \t]*\n(.*?)^```[ \t]*$", markdown, re.MULTILINE | re.DOTALL)
    assert found, "README.md has no ```python block"
    return found.group(1)


def test_block_extraction():
    text = "intro\n```bash\nrag ask x\n```\n```python\nimport rag\nrag.answer('q')\n```\n```python\nlater()\n```\n"
    assert first_python_block(text) == "import rag\nrag.answer('q')\n"


def test_readme_python_example_runs_as_written(bundled_settings, tmp_path):
    data = tmp_path / "index"
    shutil.copytree(bundled_settings.data_dir, data)  # the example may open the index read-write
    script = tmp_path / "readme_example.py"
    script.write_text(first_python_block(README.read_text(encoding="utf-8")), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=rag_env(data), capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"the README example fails:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
