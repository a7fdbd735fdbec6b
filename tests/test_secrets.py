"""Secrets and hostile content: the API key never shows (repr, logs at DEBUG, error
messages, notes, CLI output), and nothing from the corpus or a question is used as a path
or executed."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

import rag
from conftest import free_port
from openai_stub import OpenAIStub, Reply
from rag.ingest import ingest
from rag.pipeline import build_pipeline
from rag.render import to_markdown
from rag.settings import Settings, explain
from rag.store import Store, open_client

SECRET = "sk-test-Zq9x7SECRETKEYvalue0123456789"


def assert_hidden(*texts: object) -> None:
    for text in texts:
        assert SECRET not in str(text)
        assert SECRET[3:15] not in str(text)  # nor a recognisable piece of it


def llm_settings(data_dir: Path, url: str | None = None, **extra) -> Settings:
    return Settings(data_dir=data_dir, answerer="llm", llm_api_key=SECRET, llm_max_retries=0, llm_timeout=5,
                    llm_base_url=url or f"http://127.0.0.1:{free_port()}/v1", **extra)


# --- settings --------------------------------------------------------------------------

def test_settings_never_show_the_key(monkeypatch, tmp_path):
    direct = Settings(data_dir=tmp_path, llm_api_key=SECRET)
    assert direct.llm_api_key.get_secret_value() == SECRET
    assert_hidden(repr(direct), str(direct), direct.model_dump(), direct.model_dump_json())
    for var in ("OPENAI_API_KEY", "RAG_LLM_API_KEY"):
        monkeypatch.setenv(var, SECRET)
        from_env = Settings(data_dir=tmp_path)
        assert from_env.llm_api_key.get_secret_value() == SECRET and from_env.llm_configured
        assert_hidden(repr(from_env), from_env.model_dump_json())
        monkeypatch.delenv(var)


def test_validation_errors_never_show_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(ValidationError) as err:
        Settings(data_dir=tmp_path, llm_timeout=-1)
    assert_hidden(str(err.value), repr(err.value))


@pytest.mark.parametrize("bad", [{"min_papers": 30}, {"ui_username": "ann"}, {"chroma_host": "localhost"},
                                 {"llm_api_key": [SECRET]}])
def test_model_level_and_type_errors_never_show_the_key(monkeypatch, tmp_path, bad):
    """A rule across settings fails on the whole input, which pydantic would print, key included."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(ValidationError) as err:
        Settings(**{"data_dir": tmp_path, "llm_api_key": SECRET, **bad})
    assert_hidden(str(err.value), repr(err.value), explain(err.value), explain(err.value, {"llm_api_key": "--key"}))


def test_a_misspelt_key_variable_is_refused_without_its_value(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_LLM_APIKEY", SECRET)
    with pytest.raises(ValidationError) as err:
        Settings(data_dir=tmp_path)
    assert "unknown setting RAG_LLM_APIKEY (did you mean RAG_LLM_API_KEY?)" in explain(err.value)
    assert_hidden(str(err.value), repr(err.value), explain(err.value))


def test_per_call_key_option_is_hidden(bundled_settings):
    s = rag._settings(bundled_settings, {"llm_api_key": SECRET})
    assert_hidden(repr(s))


# --- the LLM path: closed port, and an endpoint that echoes the key ----------------------

def test_unreachable_llm_logs_and_notes_hide_the_key(bundled_settings, embedder, caplog):
    s = llm_settings(bundled_settings.data_dir)
    pipe = build_pipeline(s, embedder=embedder)
    with caplog.at_level(logging.DEBUG):
        events = list(pipe.stream("What is CvT?"))
        a = pipe.answer("Which papers bridge CNNs and ViTs?")
    final = events[-1]
    assert final.notes and "unreachable" in final.notes[0]
    assert a.citations and a.notes
    assert caplog.records  # DEBUG logging was on and something was logged
    assert_hidden(caplog.text, *[r.getMessage() for r in caplog.records], *events, repr(a), to_markdown(a),
                  a.notes, repr(pipe.llm.__dict__.get("settings")))


def test_endpoint_echoing_the_key_is_not_repeated(bundled_settings, embedder, caplog):
    with OpenAIStub() as stub:
        stub.script(Reply(status=401, error_message=f"Incorrect API key provided: {SECRET}"))
        pipe = build_pipeline(llm_settings(bundled_settings.data_dir, stub.url), embedder=embedder)
        with caplog.at_level(logging.DEBUG):
            a = pipe.answer("What is CvT?")
        assert stub.requests and stub.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert a.notes and "401" in a.notes[0]
    assert_hidden(caplog.text, repr(a), to_markdown(a))


def test_cli_never_prints_the_key(rag_cli, bundled_settings, tmp_path):
    data = tmp_path / "bundled"
    shutil.copytree(bundled_settings.data_dir, data)
    env = {"OPENAI_API_KEY": SECRET, "RAG_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
           "RAG_LLM_MAX_RETRIES": "0", "RAG_LLM_TIMEOUT": "5"}
    out = rag_cli("ask", "--answerer", "llm", "What is CvT?", data_dir=data, env=env)
    assert out.returncode == 0, out.stderr
    assert "note: LLM endpoint" in out.stdout and "References:" in out.stdout
    assert_hidden(out.stdout, out.stderr)
    as_json = rag_cli("ask", "--answerer", "llm", "--json", "What is CvT?", data_dir=data, env=env)
    assert json.loads(as_json.stdout)["notes"]
    assert_hidden(as_json.stdout, as_json.stderr)
    bad = rag_cli("ask", "What is CvT?", data_dir=data, env={**env, "RAG_LLM_TIMEOUT": "-1"})
    assert bad.returncode == 2 and "invalid setting RAG_LLM_TIMEOUT=-1" in bad.stderr
    assert_hidden(bad.stdout, bad.stderr)
    typo = rag_cli("ask", "What is CvT?", data_dir=data, env={**env, "RAG_LLM_APIKEY": SECRET})
    assert typo.returncode == 2 and "unknown setting RAG_LLM_APIKEY" in typo.stderr
    assert_hidden(typo.stdout, typo.stderr)


# --- hostile content is data, never a path or a command ----------------------------------

def test_hostile_corpus_and_questions_are_only_text(tmp_path, embedder, real_papers, rag_cli):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("still here")
    pwned = tmp_path / "pwned"
    hostile = {
        "id": f"../../../../{pwned}",
        "title": f"$(touch {pwned}) `touch {pwned}` Attention Tricks",
        "abstract": f"; rm -rf {victim}; touch {pwned} && echo {{{{7*7}}}} %s %n ${{HOME}}. " + real_papers[0].abstract,
        "authors": "{{7*7}}; DROP TABLE papers; --",
        "url": "file:///etc/passwd",
        "year": "2021",
    }
    corpus = tmp_path / "hostile.jsonl"
    corpus.write_text(json.dumps(hostile) + "\n" + json.dumps(
        {"title": real_papers[1].title, "abstract": real_papers[1].abstract}) + "\n")
    data = tmp_path / "data"
    s = Settings(data_dir=data)
    cwd_before = sorted(os.listdir(Path.cwd()))
    report = ingest([corpus], s, Store(open_client(s), s.embed_model), embedder=embedder)
    assert report.new == 2

    pipe = build_pipeline(s, embedder=embedder)
    pid = f"id:{hostile['id']}"
    paper = pipe.index.papers[pid]  # the id is a string, stored as given
    assert (paper.title, paper.url, paper.authors) == (" ".join(hostile["title"].split()), hostile["url"],
                                                       hostile["authors"])
    for q in (hostile["title"], f"$(rm -rf {victim})", f"`touch {pwned}` attention tricks"):
        a = pipe.answer(q)
        assert a.abstained or a.citations
    out = rag_cli("ask", "--", hostile["title"], data_dir=data)
    assert out.returncode == 0, out.stderr

    assert not pwned.exists()
    assert (victim / "keep.txt").read_text() == "still here"
    assert sorted(os.listdir(Path.cwd())) == cwd_before
    # Only Chroma's own files and the list of sources' paths (rag.source_paths) were written
    # under the data dir: nothing named after a record.
    written = [p.relative_to(data) for p in data.rglob("*")]
    assert all(p.parts[0] == "chroma" or p == Path("sources.json") for p in written), written
    assert not [p for p in written if "pwned" in str(p) or "passwd" in str(p)]
