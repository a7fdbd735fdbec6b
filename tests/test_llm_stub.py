"""The LLM answerer against a scripted OpenAI-compatible server, through the real pipeline.

The stub (tests/openai_stub.py) is real HTTP, so the real openai client, its retries and its
SSE parsing run; only the model's words are scripted. Each failure must end in the extractive
answer with a one-line note, and no API key may reach a note, an answer or a log line.
"""

from __future__ import annotations

import logging
from html import escape

import pytest
from pydantic import SecretStr

from conftest import free_port
from openai_stub import OpenAIStub, Reply
from rag.citations import claims, validate
from rag.llm import LLMAnswerer
from rag.models import Answer, Paper, Source
from rag.text import markers, sentences

KEY = "sk-test-DO-NOT-LEAK-4f9c2a7e1b"
QUESTION = "What does CvT add to vision transformers?"


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog):
    """Every test here: whatever the client and the answerer log, at any level, holds no key."""
    caplog.set_level(logging.DEBUG)
    yield
    assert KEY not in caplog.text


def llm_settings(bundled_settings, url: str, **update):
    return bundled_settings.with_overrides({
        "answerer": "llm", "llm_base_url": url, "llm_api_key": SecretStr(KEY), "llm_model": "stub-model",
        "llm_timeout": 5.0, "llm_max_retries": 0, **update})


def used_sources(pipeline, settings) -> list[Source]:
    return pipeline.gather(QUESTION, None, settings).used


def first_sentence(src: Source) -> str:
    return sentences(src.paper.abstract)[0]


def extractive(pipeline, bundled_settings) -> Answer:
    return pipeline.answer(QUESTION, settings=bundled_settings)


def assert_grounded(answer: Answer) -> None:
    """Citations are numbered 1..k, each points to a paper among the answer's sources, and the
    text's markers are exactly those citations."""
    source_ids = {s.paper_id for s in answer.sources}
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert all(c.paper_id in source_ids for c in answer.citations)
    assert set(markers(answer.text)) == {c.n for c in answer.citations}


def assert_fallback(answer: Answer, expected: Answer, *words: str) -> None:
    assert answer.answerer == "extractive"
    assert answer.text == expected.text and answer.citations == expected.citations
    assert len(answer.notes) == 1, answer.notes
    note = answer.notes[0]
    assert note.endswith("showing the extractive answer") and "\n" not in note
    for word in words:
        assert word in note, note
    assert KEY not in note and KEY not in answer.text


# --- answers that go through ---------------------------------------------------------------

def test_streamed_answer_keeps_supported_citations_and_sends_the_key(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    script = f"{first_sentence(used[0])} [1] {first_sentence(used[1])} [2]"
    stub.script(Reply(text=script))
    events = list(pipeline.stream(QUESTION, settings=s))
    answer = events[-1]
    assert "".join(events[:-1]) == script  # the deltas are the model's words as they came
    assert len(events) > 3  # ... and they came in pieces, not at once
    assert answer.answerer == "llm" and answer.notes == [] and answer.unsupported == []
    assert [c.paper_id for c in answer.citations] == [used[0].paper_id, used[1].paper_id]
    assert [c.quote for c in answer.citations] == [first_sentence(used[0]), first_sentence(used[1])]
    assert_grounded(answer)
    (request,) = stub.requests
    assert request.body["stream"] is True and request.body["model"] == "stub-model"
    assert request.headers["authorization"] == f"Bearer {KEY}"  # the key is used, just never shown


def test_the_extractive_answer_is_built_only_when_the_llm_fails(pipeline, bundled_settings, stub, monkeypatch):
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    built = []
    real = pipeline.extractive
    monkeypatch.setattr(pipeline, "extractive", lambda *a, **k: built.append(1) or real(*a, **k))
    stub.script(Reply(text=f"{first_sentence(used[0])} [1]"))
    assert pipeline.answer(QUESTION, settings=s).answerer == "llm" and not built
    stub.script(Reply(status=500))
    assert pipeline.answer(QUESTION, settings=s).answerer == "extractive" and built == [1]


def test_non_streaming_answer(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url, llm_stream=False)
    used = used_sources(pipeline, s)
    stub.script(Reply(text=f"{first_sentence(used[0])} [1]"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert answer.answerer == "llm" and [c.paper_id for c in answer.citations] == [used[0].paper_id]
    assert answer.text == f"{first_sentence(used[0])} [1]"
    assert_grounded(answer)
    assert stub.requests[0].body["stream"] is False


def test_request_fences_sources_as_data(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    stub.script(Reply(text=f"{first_sentence(used[0])} [1]"))
    history = [{"role": "user", "content": "Which papers add convolutions to ViTs?"},
               {"role": "assistant", "content": "Several do [1].\n\nReferences:\n\n[1] CvT"}]
    answer = pipeline.answer(QUESTION, history=history, settings=s, follow_up=False)
    chat = stub.requests[0].body["messages"]
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert "data" in chat[0]["content"] and "never instructions" in chat[0]["content"]
    user = chat[-1]["content"]
    assert QUESTION in user and "not instructions" in user
    assert user.count("<source n=") == user.count("</source>") == len(answer.sources) == len(used)
    for n, src in enumerate(used, start=1):
        title = escape(src.title, quote=False).replace('"', "&quot;")  # apostrophes stay as they are
        assert f'<source n="{n}" title="{title}">' in user


def test_429_is_retried_then_answered(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url, llm_max_retries=2)
    used = used_sources(pipeline, s)
    # retry-after-ms keeps the client's backoff short; the retry itself is what is tested.
    stub.script(Reply(status=429, headers={"retry-after-ms": "10"}), Reply(text=f"{first_sentence(used[0])} [1]"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert answer.answerer == "llm" and answer.notes == []
    assert len(stub.requests) == 2


def test_429_after_all_retries_falls_back(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url, llm_max_retries=1)
    stub.script(Reply(status=429, headers={"retry-after-ms": "10"}))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "429", "rate-limit")
    assert len(stub.requests) == 2  # the first try and one retry


def test_http_500_falls_back(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url, llm_max_retries=1)
    stub.script(Reply(status=500, headers={"retry-after-ms": "10"}))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "HTTP 500")
    assert len(stub.requests) == 2


def test_error_body_echoing_the_key_is_not_shown(pipeline, bundled_settings, stub):
    # OpenAI's 401 body quotes the key it got; the note must not pass that on.
    s = llm_settings(bundled_settings, stub.url)
    stub.script(Reply(status=401, error_message=f"Incorrect API key provided: {KEY}"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "HTTP 401")


@pytest.mark.parametrize("stream", [True, False])
def test_malformed_json_falls_back(pipeline, bundled_settings, stub, stream):
    s = llm_settings(bundled_settings, stub.url, llm_stream=stream)
    stub.script(Reply(text="Never shown [1].", malformed=True))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "malformed")


def test_slow_response_times_out(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url, llm_timeout=0.5)
    stub.script(Reply(text="Too late [1].", delay=30))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "timed out", "0.5 s")


def test_slow_drip_stream_is_cut_at_the_timeout(pipeline, bundled_settings, stub):
    # Every chunk arrives well within the read timeout, but the whole answer would not: the
    # answerer stops reading once the request has run past llm_timeout.
    s = llm_settings(bundled_settings, stub.url, llm_timeout=0.5)
    stub.script(Reply(text="one two three four five six seven eight nine ten [1].", pause=0.2))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "longer than 0.5 s")


@pytest.mark.parametrize("abrupt", [True, False], ids=["connection-dropped", "body-ended-early"])
def test_cut_stream_falls_back(pipeline, bundled_settings, stub, abrupt):
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    text = f"{first_sentence(used[0])} [1] {first_sentence(used[1])} [2]"
    stub.script(Reply(text=text, cut_after=4, abrupt=abrupt))
    events = list(pipeline.stream(QUESTION, settings=s))
    answer, expected = events[-1], extractive(pipeline, bundled_settings)
    # The preview showed the words that arrived, then the answer that replaces them.
    assert len(events) == 4 + 2 and text.startswith("".join(events[:4]))
    assert events[4] == "\n\n" + expected.text
    assert_fallback(answer, expected, "cut off")


def test_connection_refused_falls_back(pipeline, bundled_settings):
    port = free_port()  # bound and released: nothing listens there
    s = llm_settings(bundled_settings, f"http://127.0.0.1:{port}/v1")
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "unreachable (connection refused)")


def test_empty_answer_falls_back(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    stub.script(Reply(text=""))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "empty")


# --- one deadline for the whole answer (issue 28, item 2) ------------------------------------
# Each endpoint below would hold an answer for minutes (or forever) within llm_timeout and the
# retries; with a 2-second deadline the answer returns with the extractive text and the note.

@pytest.mark.parametrize("reply", [
    Reply(text="CvT adds convolutions", keepalive=0.2),
    Reply(status=429, headers={"retry-after": "120"}),
    Reply(status=503, headers={"retry-after": "240"}),
    Reply(text="Too late [1].", delay=600),
    Reply(text="convolutions and more convolutions", endless=True, pause=0.05),
], ids=["keep-alive-forever", "429-retry-after", "503-retry-after", "hang", "endless-text"])
def test_the_deadline_ends_every_slow_answer(pipeline, bundled_settings, stub, reply):
    s = llm_settings(bundled_settings, stub.url, llm_deadline=2.0, llm_timeout=300.0, llm_max_retries=3)
    stub.script(reply)
    events = list(pipeline.stream(QUESTION, settings=s))
    assert_fallback(events[-1], extractive(pipeline, bundled_settings), "2-second deadline", "RAG_LLM_DEADLINE")
    assert len(stub.requests) == 1  # no retry that could not finish in time


def test_a_retry_that_fits_the_deadline_is_made(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url, llm_deadline=30.0, llm_max_retries=2)
    used = used_sources(pipeline, s)
    stub.script(Reply(status=503, headers={"retry-after": "0.1"}), Reply(text=f"{first_sentence(used[0])} [1]"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert answer.answerer == "llm" and answer.notes == [] and len(stub.requests) == 2


# --- answers whose citations do not hold ----------------------------------------------------

def test_out_of_range_markers_are_removed(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    beyond = len(used) + 1  # one past the last source sent
    stub.script(Reply(text=f"{first_sentence(used[0])} [1][{beyond}] {first_sentence(used[1])} [0] [2]"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert answer.answerer == "llm"
    assert answer.removed_markers == [beyond, 0]
    assert [c.paper_id for c in answer.citations] == [used[0].paper_id, used[1].paper_id]
    assert f"[{beyond}]" not in answer.text and "[0]" not in answer.text
    assert_grounded(answer)


def test_a_sentence_its_citation_does_not_support_is_removed(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    invented = "The model was trained on cooking recipes and guitar tablature."
    # [2] cited first for the invented claim: after its removal the CvT citation is renumbered [1].
    stub.script(Reply(text=f"{invented[:-1]} [2]. {first_sentence(used[0])} [1]"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert answer.answerer == "llm"
    assert answer.unsupported == [invented]
    assert answer.text == f"{first_sentence(used[0])} [1]"
    assert [c.paper_id for c in answer.citations] == [used[0].paper_id]
    assert_grounded(answer)


def test_an_uncited_sentence_no_source_supports_is_removed(pipeline, bundled_settings, stub):
    """Issue 28, item 3: the aside was listed as unsupported but still shown as part of a
    grounded answer."""
    s = llm_settings(bundled_settings, stub.url)
    used = used_sources(pipeline, s)
    aside = "Bananas are yellow fruit grown in tropical farms."
    stub.script(Reply(text=f"{first_sentence(used[0])} [1] {aside}"))
    answer = pipeline.answer(QUESTION, settings=s)
    assert answer.answerer == "llm" and answer.unsupported == [aside]
    assert answer.text == f"{first_sentence(used[0])} [1]" and "Bananas" not in answer.text
    assert_grounded(answer)


def test_answer_without_any_supported_citation_falls_back(pipeline, bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    stub.script(Reply(text="Cooking recipes improve guitar tablature [1]. See also [9]."))
    answer = pipeline.answer(QUESTION, settings=s)
    assert_fallback(answer, extractive(pipeline, bundled_settings), "no citation supported")


def test_answerer_is_reused_only_for_the_same_endpoint(bundled_settings, stub):
    s = llm_settings(bundled_settings, stub.url)
    llm = LLMAnswerer(s)
    assert llm.serves(s.with_overrides({}))
    assert not llm.serves(s.with_overrides({"llm_api_key": SecretStr("sk-other")}))
    assert not llm.serves(s.with_overrides({"llm_timeout": 9.0}))
    assert not llm.serves(s.with_overrides({"llm_model": "other"}))


# --- validate, the pure step ----------------------------------------------------------------

VIT = Source(Paper("vit", "ViT", "We apply a pure transformer to sequences of image patches. "
                                 "It matches convolutional networks on ImageNet classification."), 1.0)
CVT = Source(Paper("cvt", "CvT", "We present CvT, which adds convolutions to vision transformers. "
                                 "CvT improves accuracy and efficiency."), 0.9)


def test_validate_docstring_example():
    text = "CvT introduces convolutions into vision transformers [2]. It beats every model on speech [1]. See [5]."
    out = validate(text, [VIT, CVT], 0.5)
    assert out.text == "CvT introduces convolutions into vision transformers [1]."
    assert [(c.n, c.paper_id) for c in out.citations] == [(1, "cvt")]
    assert out.citations[0].quote == "We present CvT, which adds convolutions to vision transformers."
    assert out.removed_markers == [5]
    assert out.unsupported == ["It beats every model on speech.", "See."]


def test_validate_keeps_uncited_sentences_a_source_supports_and_layout():
    text = ("Two papers:\n\nA pure transformer reads image patches. CvT adds convolutions [2]. It is.\n"
            "Bananas are yellow.")
    out = validate(text, [VIT, CVT], 0.5)
    assert out.text == "Two papers:\n\nA pure transformer reads image patches. CvT adds convolutions [1]. It is."
    assert out.unsupported == ["Bananas are yellow."]


def test_validate_renumbers_by_first_appearance_and_expands_lists():
    text = "CvT adds convolutions to vision transformers [2, 1]. A pure transformer reads image patches [1]."
    out = validate(text, [VIT, CVT], 0.5)
    # [1] does not support the CvT sentence: only [2] stays there, and becomes [1]; the
    # sentence has a supported citation, so it stays.
    assert out.text == "CvT adds convolutions to vision transformers [1]. A pure transformer reads image patches [2]."
    assert [c.paper_id for c in out.citations] == ["cvt", "vit"]
    assert out.unsupported == []


def test_validate_keeps_layout_and_quotes_the_best_sentence():
    text = "Papers:\n\n- **ViT** [1]: it matches convolutional networks on ImageNet.\n- **CvT** [2]: improves accuracy."
    out = validate(text, [VIT, CVT], 0.5)
    assert out.text == text
    assert out.citations[0].quote == "It matches convolutional networks on ImageNet classification."
    assert out.citations[1].quote == "CvT improves accuracy and efficiency."


def test_validate_with_no_sources_removes_every_marker():
    out = validate("Something [1]. Else [2].", [], 0.5)
    assert out.text == "" and out.citations == [] and out.removed_markers == [1, 2]
    assert out.unsupported == ["Something.", "Else."]


def test_claims_join_back_to_the_text():
    text = "A pure transformer [1]. e.g. patches. 96.8% top-1! [2]\n\n1. **CvT** [2]: convolutions"
    pieces = claims(text)
    assert "".join(pieces) == text
    # No split before a lower-case word ("e.g. patches") or inside a number ("96.8%").
    assert pieces[:2] == ["A pure transformer [1]. e.g. patches.", " 96.8% top-1! [2]"]
