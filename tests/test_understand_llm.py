"""Question understanding by an LLM endpoint (rag/understand_llm.py), against the scripted
OpenAI-compatible stub server over real HTTP: the reading is used when it is valid, and the
fitted question model decides when the endpoint fails or answers something else."""

from __future__ import annotations

import json

import pytest

from openai_stub import OpenAIStub, Reply
from rag.question_model import Kind
from rag.understand_llm import LLMUnderstanding, parse


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


def _settings(bundled_settings, url: str):
    return bundled_settings.with_overrides({"understanding": "llm", "llm_base_url": url, "llm_model": "stub-model",
                                            "llm_timeout": 5.0, "llm_max_retries": 0})


def test_parse_takes_only_a_valid_reading():
    good = parse('Here: {"standalone": "Which papers use CvT?", "kind": "exists", "years": null}')
    assert good is not None and good.kind == Kind.EXISTS and good.years is None
    for bad in ("no json at all", '{"standalone": "", "kind": "list", "years": null}',
                '{"standalone": "x", "kind": "poem", "years": null}',
                '{"standalone": "x", "kind": "list", "years": [2024, 2020]}', '{"kind": "list"}'):
        assert parse(bad) is None, bad


def test_the_prompt_carries_the_question_and_the_conversation(bundled_settings, stub):
    stub.script(Reply(text=json.dumps({"standalone": "Which vision transformer papers run fast?", "kind": "list",
                                       "years": [2021, 9999]})))
    history = [{"role": "user", "content": "Which papers bridge CNNs and ViTs?"},
               {"role": "assistant", "content": "1. **CvT** [1]: ..."}]
    reading = LLMUnderstanding(_settings(bundled_settings, stub.url)).read("Which of those are fast?", history)
    assert reading.standalone == "Which vision transformer papers run fast?" and reading.years == (2021, 9999)
    prompt = stub.requests[0].body["messages"][0]["content"]
    assert "Which of those are fast?" in prompt and "Which papers bridge CNNs and ViTs?" in prompt


def test_the_pipeline_uses_the_reading_kind_and_years(pipeline, bundled_settings, stub):
    stub.script(Reply(text=json.dumps({"standalone": "Is there a paper on feature matching with transformers?",
                                       "kind": "exists", "years": None})))
    s = _settings(bundled_settings, stub.url)
    answer = pipeline.answer("feature matching with transformers", settings=s)
    assert answer.text.startswith("Yes") and stub.requests  # the LLM's kind: a yes/no answer
    # A year range the question states becomes a filter: the bundled corpus has no years.
    stub.script(Reply(text=json.dumps({"standalone": "Papers on GANs since 2030", "kind": "list",
                                       "years": [2030, 9999]})))
    assert pipeline.answer("papers on GANs since 2030", settings=s).abstained


@pytest.mark.parametrize("reply", [Reply(status=500), Reply(text="I think it is a list question."),
                                   Reply(malformed=True)])
def test_a_failed_reading_leaves_the_decision_to_the_model(pipeline, bundled_settings, stub, reply):
    stub.script(reply)
    s = _settings(bundled_settings, stub.url)
    with_llm = pipeline.answer("Is there any paper on feature matching with transformers?", settings=s)
    without = pipeline.answer("Is there any paper on feature matching with transformers?")
    assert with_llm.text == without.text and stub.requests
