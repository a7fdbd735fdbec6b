"""Prompt files, loaded by name from `prompts/` and rendered strictly.

The files are package data (settings.PROMPTS_DIR, found through importlib.resources), so an
installed `rag` reads its own copy whatever the working directory.

A prompt is a Markdown file whose placeholders are `$name` (`string.Template` syntax; `$$` is a
literal dollar sign). Rendering fails loudly when a value is missing, when a value is passed
that the file does not use, or when the file holds a malformed `$`: a prompt edited out of step
with its caller is an error at the first call, never a silently half-filled prompt.

`PROMPTS` lists every prompt file and the variables it takes; tests/test_prompts.py checks the
files on disk against it. This module does not build chat messages (see rag/llm.py).
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from rag.settings import PROMPTS_DIR

# Every prompt file in prompts/ and the variables its text uses.
PROMPTS: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "answer": frozenset({"question", "sources", "count"}),
    "understand": frozenset({"question", "history", "kinds"}),
}


class PromptError(ValueError):
    """A prompt file is missing or does not match the values it is rendered with."""


def load(name: str, directory: Path = PROMPTS_DIR) -> Template:
    """The template of `<directory>/<name>.md`; PromptError when there is no such file."""
    path = directory / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"no prompt named {name!r} (looked for {path})")
    template = Template(path.read_text(encoding="utf-8"))
    if not template.is_valid():
        raise PromptError(f"prompt {name!r} has a malformed placeholder (write $$ for a literal $)")
    return template


def placeholders(template: Template) -> set[str]:
    """Variable names a template uses: `placeholders(Template("Q: $question"))` -> `{"question"}`."""
    return set(template.get_identifiers())


def render(name: str, directory: Path = PROMPTS_DIR, **values: object) -> str:
    """`<directory>/<name>.md` with every `$variable` replaced by `values[variable]`.

    Strict both ways: `render("answer", question="...")` raises PromptError naming the missing
    `sources` and `count`; an extra keyword the file does not use raises too.
    """
    template = load(name, directory)
    wanted = placeholders(template)
    missing, extra = wanted - values.keys(), values.keys() - wanted
    if missing or extra:
        parts = [f"missing {sorted(missing)}" if missing else "", f"unexpected {sorted(extra)}" if extra else ""]
        raise PromptError(f"prompt {name!r}: " + "; ".join(p for p in parts if p))
    return template.substitute({k: str(v) for k, v in values.items()})
