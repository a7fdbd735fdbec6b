"""Settings that would crash or mislead are refused at the edge, in one line that names the
setting as the user wrote it: environment variables, keyword arguments, `with_overrides`
and CLI options alike."""

from __future__ import annotations

import math
import os
import re
from typing import get_args

import pytest
from pydantic import ValidationError

from rag.settings import Settings, settings_table


def refused(match: str, **kwargs) -> str:
    """Settings(**kwargs) fails with a message containing `match`; returns the message."""
    with pytest.raises(ValidationError) as err:
        Settings(**kwargs)
    assert match in str(err.value), str(err.value)
    return str(err.value)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No RAG_* variables from the developer's shell; the data dir under tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("RAG_") or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


# --- 1. corpus paths -----------------------------------------------------------------------

def test_corpus_paths_plain_path_pathsep_list_or_json(clean_env, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "papers dir"
    clean_env.setenv("RAG_CORPUS_PATHS", str(a))
    assert Settings().corpus_paths == [a]
    clean_env.setenv("RAG_CORPUS_PATHS", f"{a}{os.pathsep}{b}{os.pathsep}")  # a trailing separator is harmless
    assert Settings().corpus_paths == [a, b]
    clean_env.setenv("RAG_CORPUS_PATHS", f'["{a}", "{b}"]')
    assert Settings().corpus_paths == [a, b]
    assert Settings(corpus_paths=str(a)).corpus_paths == [a]
    assert Settings(corpus_paths=a).corpus_paths == [a]


@pytest.mark.parametrize("value, reason", [("", "no path"), (os.pathsep, "no path"), ('["a", ', "not a JSON list")])
def test_corpus_paths_without_a_path_are_refused(clean_env, value, reason):
    clean_env.setenv("RAG_CORPUS_PATHS", value)
    refused(reason)


# --- 2, 3, 5. addresses ---------------------------------------------------------------------

@pytest.mark.parametrize("field", ["ui_port", "chroma_port"])
@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_ports_are_1_to_65535(clean_env, field, port):
    host = {"chroma_host": "127.0.0.1"} if field == "chroma_port" else {}
    refused(field, **host, **{field: port})
    assert getattr(Settings(**host, **{field: 65535}), field) == 65535


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3", "10.0.0.999", "my host", "http://127.0.0.1", "localhost:8000",
                                  "", "-leading.dash", "a..b", "x" * 64 + ".org", "[127.0.0.1]"])
def test_hosts_must_be_an_ip_address_or_a_host_name(clean_env, host):
    refused("ui_host", ui_host=host)
    refused("chroma_host", chroma_host=host, chroma_port=8000)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::1", "[::1]", "localhost", "papers.example.org",
                                  "chroma_server", "Chroma-1"])
def test_valid_hosts_are_kept_as_written(clean_env, host):
    assert Settings(ui_host=host).ui_host == host
    assert Settings(chroma_host=host, chroma_port=8000).chroma_host == host


def test_host_errors_say_what_is_wrong(clean_env):
    refused("not a valid IP address", ui_host="256.1.1.1")
    refused("RAG_CHROMA_PORT", chroma_host="localhost:8000", chroma_port=8000)
    refused("a host name, not a URL", chroma_host="http://localhost", chroma_port=8000)


def test_chroma_host_and_port_come_together(clean_env):
    assert not Settings().uses_server
    clean_env.setenv("RAG_CHROMA_HOST", "127.0.0.1")
    msg = refused("RAG_CHROMA_HOST is set without RAG_CHROMA_PORT")
    assert "embedded store" in msg
    clean_env.delenv("RAG_CHROMA_HOST")
    clean_env.setenv("RAG_CHROMA_PORT", "8000")
    refused("RAG_CHROMA_PORT is set without RAG_CHROMA_HOST")
    clean_env.setenv("RAG_CHROMA_HOST", "127.0.0.1")
    assert Settings().uses_server


# --- 4, 6. numbers ----------------------------------------------------------------------------

def test_min_papers_above_max_papers_names_both(clean_env):
    refused("RAG_MIN_PAPERS (30) is above RAG_MAX_PAPERS (20)", min_papers=30, max_papers=20)
    assert Settings(min_papers=5, max_papers=5).min_papers == 5


def test_chunk_overlap_below_chunk_size(clean_env):
    refused("RAG_CHUNK_OVERLAP (64) must be below RAG_CHUNK_SIZE (64)", chunk_size=64, chunk_overlap=64)


FLOATS = [name for name, f in Settings.model_fields.items() if float in (f.annotation, *get_args(f.annotation))]


def test_every_float_setting_is_covered():
    expected = {"feedback_weight", "relative_cutoff", "abstain_threshold", "llm_timeout", "support_threshold"}
    assert expected <= set(FLOATS)


@pytest.mark.parametrize("field", FLOATS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e300, -1e300, "inf", "nan"])
def test_float_settings_refuse_inf_nan_and_huge(clean_env, field, value):
    refused(field, **{field: value})


@pytest.mark.parametrize("field", ["feedback_weight", "llm_timeout"])
def test_float_settings_from_the_environment_too(clean_env, field):
    for value in ("inf", "NaN", "1e300"):
        clean_env.setenv(f"RAG_{field.upper()}", value)
        refused(field)


# Integer settings outside the embedding section (whose bounds belong to the embedder).
BOUNDED_INTS = ["candidate_chunks", "feedback_papers", "feedback_terms", "rrf_k", "max_papers", "min_papers",
                "max_question_chars", "llm_max_retries", "llm_max_tokens"]


@pytest.mark.parametrize("field", BOUNDED_INTS)
def test_integer_settings_have_an_upper_bound(clean_env, field):
    extra = {"max_papers": 10**9} if field == "min_papers" else {}
    refused(field, **{field: 10**9}, **extra)


# --- 7. unknown environment variables --------------------------------------------------------

def test_unknown_variable_is_refused_with_a_suggestion(clean_env):
    clean_env.setenv("RAG_MAX_PAPER", "5")
    refused("unknown setting RAG_MAX_PAPER (did you mean RAG_MAX_PAPERS?)")


def test_unknown_variable_without_a_near_name(clean_env):
    clean_env.setenv("RAG_ZQXW", "1")
    msg = refused("unknown setting RAG_ZQXW")
    assert "did you mean" not in msg


def test_known_variables_aliases_and_test_harness_variables_pass(clean_env, tmp_path):
    clean_env.setenv("RAG_MAX_PAPERS", "5")
    clean_env.setenv("rag_min_papers", "2")  # pydantic-settings reads names case-insensitively
    clean_env.setenv("RAG_LLM_API_KEY", "sk-x")
    clean_env.setenv("OPENAI_API_KEY", "sk-y")
    clean_env.setenv("RAG_TEST_INDEX_CACHE", str(tmp_path / "cache"))  # read by tests/conftest.py, not a setting
    s = Settings()
    assert (s.max_papers, s.min_papers, s.llm_api_key.get_secret_value()) == (5, 2, "sk-x")


def test_unknown_keywords_are_refused(clean_env):
    refused("max_paper", max_paper=5)
    refused("max_paper", **{"max_paper": 5, "data_dir": "/tmp"})
    with pytest.raises(ValidationError):
        Settings().with_overrides({"max_paper": 5})


# --- 8. UI login -------------------------------------------------------------------------------

@pytest.mark.parametrize("login", [{"ui_username": "ann"}, {"ui_password": "pw"},
                                   {"ui_username": "ann", "ui_password": ""}])
def test_ui_username_and_password_both_or_neither(clean_env, login):
    refused("set both RAG_UI_USERNAME and RAG_UI_PASSWORD, or neither", **login)


def test_ui_login_both_set_or_neither_is_fine(clean_env):
    both = Settings(ui_username="ann", ui_password="pw")
    assert both.ui_password.get_secret_value() == "pw"
    assert Settings().ui_username is None


# --- 9. with_overrides re-validates everything ----------------------------------------------------

@pytest.mark.parametrize("overrides, match", [
    ({"ui_port": 99999}, "ui_port"),
    ({"ui_host": "256.1.1.1"}, "ui_host"),
    ({"min_papers": 25}, "RAG_MIN_PAPERS (25) is above RAG_MAX_PAPERS (20)"),
    ({"chroma_host": "127.0.0.1"}, "RAG_CHROMA_HOST is set without RAG_CHROMA_PORT"),
    ({"feedback_weight": math.inf}, "feedback_weight"),
    ({"chunk_overlap": 254}, "RAG_CHUNK_OVERLAP"),
    ({"ui_username": "ann"}, "set both RAG_UI_USERNAME"),
    ({"corpus_paths": ""}, "no path"),
])
def test_with_overrides_revalidates(clean_env, overrides, match):
    with pytest.raises(ValidationError, match=re.escape(match)):
        Settings().with_overrides(overrides)


def test_with_overrides_keeps_valid_values(clean_env, tmp_path):
    s = Settings(ui_username="ann", ui_password="pw", chroma_host="localhost", chroma_port=8000)
    changed = s.with_overrides({"max_papers": 3, "corpus_paths": str(tmp_path)})
    assert (changed.max_papers, changed.corpus_paths, changed.ui_password.get_secret_value()) == (3, [tmp_path], "pw")
    assert changed.with_overrides({"chroma_host": None, "chroma_port": None}).uses_server is False


# --- 10. the CLI: one line naming the setting as the user wrote it -------------------------------

def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("rag: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr.strip()


@pytest.mark.parametrize("args, env, expected", [
    (["stats"], {"RAG_UI_PORT": "99999"},
     "invalid setting RAG_UI_PORT=99999: Input should be less than or equal to 65535"),
    (["stats"], {"RAG_MAX_PAPER": "5"}, "rag: error: unknown setting RAG_MAX_PAPER (did you mean RAG_MAX_PAPERS?)"),
    (["stats"], {"RAG_CORPUS_PATHS": '["a",'}, "invalid setting RAG_CORPUS_PATHS="),
    (["stats"], {"RAG_MIN_PAPERS": "30"}, "rag: error: RAG_MIN_PAPERS (30) is above RAG_MAX_PAPERS (20)"),
    (["stats"], {"RAG_CHROMA_HOST": "127.0.0.1"}, "rag: error: RAG_CHROMA_HOST is set without RAG_CHROMA_PORT"),
    (["stats"], {"RAG_UI_USERNAME": "ann"}, "rag: error: set both RAG_UI_USERNAME and RAG_UI_PASSWORD, or neither"),
    (["stats"], {"RAG_FEEDBACK_WEIGHT": "inf"}, "invalid setting RAG_FEEDBACK_WEIGHT=inf: "),
    (["ui", "--port", "99999"], {}, "invalid setting --port 99999: "),
    (["ui", "--host", "256.1.1.1"], {}, "invalid setting --host 256.1.1.1: "),
    (["ask", "--max-papers", "0", "What is CvT?"], {}, "invalid setting --max-papers 0: "),
    (["ui"], {"RAG_UI_HOST": "256.1.1.1", "RAG_UI_PORT": "0"}, "(also invalid: RAG_UI_PORT)"),
])
def test_cli_names_the_setting_as_written(rag_cli, tmp_path, args, env, expected):
    assert expected in one_line_error(rag_cli(*args, data_dir=tmp_path / "data", env=env))


# --- the table docs/settings.md is generated from (tests/test_docs.py keeps the page current) ----

def test_settings_table_lists_every_setting_with_its_range():
    table = settings_table()
    rows = table.splitlines()
    assert len(rows) == 2 + len(Settings.model_fields)
    assert "| `RAG_UI_PORT` | `7860` | 1 to 65535 |" in table
    assert "| `RAG_RETRIEVAL_MODE` | `hybrid` | `hybrid`, `dense`, `bm25` |" in table
    assert "`RAG_LLM_API_KEY` or `OPENAI_API_KEY`" in table

