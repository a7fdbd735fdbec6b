"""Prompt files: each one's placeholders match what its caller passes, and rendering is strict."""

from __future__ import annotations

import re

import pytest

from rag import prompts
from rag.settings import PROMPTS_DIR


def test_every_prompt_file_is_declared_with_its_placeholders():
    on_disk = {p.stem for p in PROMPTS_DIR.glob("*.md")}
    assert on_disk == set(prompts.PROMPTS)
    for name, variables in prompts.PROMPTS.items():
        assert prompts.placeholders(prompts.load(name)) == set(variables), name


def test_rendering_fills_every_placeholder():
    values = {"question": "What does CvT add?", "sources": '<source n="1" title="CvT">abstract</source>', "count": 1}
    text = prompts.render("answer", **values)
    assert "What does CvT add?" in text and '<source n="1" title="CvT">' in text and "[1] to [1]" in text
    assert not re.search(r"\$\w", text)  # nothing left unfilled


def test_missing_or_extra_values_are_errors():
    with pytest.raises(prompts.PromptError, match=r"missing \['count', 'sources'\]"):
        prompts.render("answer", question="q")
    with pytest.raises(prompts.PromptError, match=r"unexpected \['temperature'\]"):
        prompts.render("system", temperature=0)
    with pytest.raises(prompts.PromptError, match="no prompt named 'nope'"):
        prompts.render("nope")


def test_malformed_placeholder_is_an_error(tmp_path):
    (tmp_path / "broken.md").write_text("Costs $ 5 for $item\n")
    with pytest.raises(prompts.PromptError, match="malformed placeholder"):
        prompts.render("broken", directory=tmp_path, item="x")
    (tmp_path / "priced.md").write_text("Costs $$5 for $item\n")
    assert prompts.render("priced", directory=tmp_path, item="tea") == "Costs $5 for tea\n"


def test_prompts_say_that_sources_are_data():
    # The injection defence starts in the prompt: sources are fenced and declared data.
    system = prompts.render("system")
    assert "<source>" in system and "never instructions" in system
    assert "not instructions" in prompts.load("answer").template
