"""Bad questions and bad corpus files, end to end.

Questions go through `Pipeline.answer`, the public `rag.answer` and `rag ask`: each either
gets a specific QuestionError (one line from the CLI, non-zero exit) or a normal answer or
abstention. Nothing is executed: shell-looking questions create or delete no file.
Corpus files with every kind of damage are ingested through `rag ingest`: the good records
are indexed, each bad one is reported with file, line and reason, and the counts reconcile.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

import rag
from rag.models import Answer
from rag.questions import QuestionError

REFUSED = {  # question -> what the message must say
    "empty": ("", "the question is empty"),
    "whitespace": (" \t\n  \r\n ", "the question is empty"),
    "100k characters": ("vision transformers " * 5000, "100,000 characters long; the limit is 2,000"),
    "limit + 1": ("a" * 2001, "2,001 characters long; the limit is 2,000"),
    "NUL": ("What is\x00 CvT?", "control or binary characters (U+0000)"),
    "ANSI escape": ("\x1b[31mred\x1b[0m attention", "control or binary characters (U+001B)"),
    "binary": (bytes(range(256)).decode("latin-1"), "control or binary characters"),
    "lone surrogate": ("what is \udcff\udcfe CvT", "control or binary characters (U+DCFE, U+DCFF)"),
    "only punctuation": ("?!?!... --- ;;; ()", "no words, only punctuation or symbols"),
    "only emoji": ("🤖🚀🔥 ⭐", "no words, only punctuation or symbols"),
}

ANSWERED = {  # question -> None; each gets an answer or an abstention, never an error
    "mixed scripts and emoji": "Vision Transformer 视觉变换器 Трансформер 🤖🚀 ViT?",
    "SQL injection": "'; DROP TABLE papers; --",
    "SQL in a question": "Robert'); DELETE FROM embeddings WHERE 1=1; -- which papers use attention?",
    "shell substitution": "$(rm -rf VICTIM)",
    "backticks": "`id` `touch PWNED`",
    "touch": "$(touch PWNED) vision transformers",
    "format strings": "%s %n {0} {{7*7}} ${HOME} attention",
    "path": "../../../../etc/passwd",
    "exactly at the limit": "attention " * 200,
    "right-to-left override": "which papers \u202eesrever\u202c use transformers?",
}


def _expand(question: str, tmp_path) -> str:
    return question.replace("VICTIM", str(tmp_path / "victim")).replace("PWNED", str(tmp_path / "pwned"))


@pytest.fixture
def victim(tmp_path):
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("still here")
    yield
    assert (tmp_path / "victim" / "keep.txt").read_text() == "still here"
    assert not (tmp_path / "pwned").exists()


def _is_normal(a: Answer) -> bool:
    if a.abstained:  # declined, or read as no question about papers at all (a pointer, nothing searched)
        return a.citations == [] and ("does not cover" in a.text or "not a question about the papers" in a.notes)
    return bool(a.text) and bool(a.citations)


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_through_pipeline_and_module(case, pipeline, bundled_settings):
    question, message = REFUSED[case]
    with pytest.raises(QuestionError, match=re.escape(message)) as refused:
        pipeline.answer(question)
    assert isinstance(refused.value, ValueError)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 200
    with pytest.raises(rag.QuestionError, match=re.escape(message)):
        rag.answer(question, settings=bundled_settings)
    with pytest.raises(QuestionError, match=re.escape(message)):
        list(pipeline.stream(question))
    with pytest.raises(QuestionError, match=re.escape(message)):
        pipeline.retrieve(question)


@pytest.mark.parametrize("case", list(ANSWERED))
def test_answered_or_abstained(case, pipeline, bundled_settings, tmp_path, victim):
    question = _expand(ANSWERED[case], tmp_path)
    before = pipeline.index.store.counts()
    a = pipeline.answer(question)
    assert _is_normal(a), a.text
    b = rag.answer(question, settings=bundled_settings)
    assert (b.text, b.abstained) == (a.text, a.abstained)
    assert pipeline.index.store.counts() == before  # nothing dropped or deleted


def test_not_text_is_refused(pipeline):
    for value in (None, 42, b"What is CvT?", ["What is CvT?"]):
        with pytest.raises(QuestionError, match="must be text"):
            pipeline.answer(value)


def test_bad_history_is_ignored(pipeline):
    plain = pipeline.answer("What is CvT?")
    for history in ("not a list", [None, 3, "x"], [{"role": "user"}, {"content": None}], [["hi", "there"]]):
        a = pipeline.answer("What is CvT?", history=history)
        assert a.text == plain.text


def test_limit_is_the_setting(pipeline, bundled_settings):
    strict = bundled_settings.model_copy(update={"max_question_chars": 20})
    with pytest.raises(QuestionError, match="21 characters long; the limit is 20"):
        pipeline.answer("x" * 21, settings=strict)
    assert _is_normal(pipeline.answer("What is CvT?", settings=strict))


@pytest.fixture
def bundled_copy(bundled_settings, tmp_path):
    dest = tmp_path / "bundled"
    shutil.copytree(bundled_settings.data_dir, dest)
    return dest


CLI_REFUSED = ["empty", "whitespace", "100k characters", "ANSI escape", "only punctuation", "only emoji"]


@pytest.mark.parametrize("case", CLI_REFUSED)
def test_cli_refuses_in_one_line(case, rag_cli, bundled_copy):
    question, message = REFUSED[case]
    out = rag_cli("ask", question, data_dir=bundled_copy)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and out.stderr == lines[0] + "\n", out.stderr  # exactly one line, then its end
    assert lines[0].startswith("rag: error: ") and message in lines[0] and "Traceback" not in out.stderr


def test_cli_executes_nothing(rag_cli, bundled_copy, tmp_path, victim):
    """Shell-looking questions through `rag ask` (one process for all, as --json lines)."""
    for case in ("SQL injection", "shell substitution", "touch"):  # each `rag` start loads the model
        out = rag_cli("ask", "--json", "--", _expand(ANSWERED[case], tmp_path), data_dir=bundled_copy)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert got["question"] == " ".join(_expand(ANSWERED[case], tmp_path).split())
        assert got["abstained"] or got["citations"]


# --- bad corpus files, through `rag ingest` ------------------------------------------------

@pytest.mark.slow  # `rag ingest` builds an index of the good records
def test_cli_ingest_of_a_mixed_directory(rag_cli, tmp_path, real_papers):
    d = tmp_path / "corpus"
    d.mkdir()
    good = [json.dumps({"title": p.title, "abstract": p.abstract}) for p in real_papers[300:306]]
    # good.jsonl: 6 records, 1 an exact duplicate of another file's record -> 6 read
    (d / "a_good.jsonl").write_text("\n".join(good) + "\n")
    # truncated.jsonl: 3 records, the last cut off mid-object
    new = json.dumps({"title": real_papers[306].title, "abstract": real_papers[306].abstract})
    (d / "truncated.jsonl").write_text(f"{good[0]}\n{new}\n{good[2][:30]}")
    # latin1.txt: 2 pairs, the second with Latin-1 bytes
    (d / "latin1.txt").write_bytes((f"{real_papers[307].title}\n{real_papers[307].abstract}\n"
                                    f"Réseaux Convolutifs\n{'Une méthode pour la vision. ' * 6}\n").encode("latin-1"))
    # missing.csv: header lacks `abstract`: 2 rows skipped
    (d / "missing.csv").write_text(f"title,summary\n{real_papers[308].title},x\n{real_papers[309].title},y\n")
    # huge.jsonl: a 1 MB abstract and a good record
    (d / "huge.jsonl").write_text(json.dumps({"title": "Huge", "abstract": "words " * 180_000}) + "\n"
                                  + json.dumps({"title": real_papers[310].title,
                                                "abstract": real_papers[310].abstract}))
    (d / "empty.jsonl").write_text("")
    out = rag_cli("ingest", "--quiet", str(d), data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    # records: 6 + 3 + 2 + 2 + 2 = 15; skipped: 1 + 1 + 2 + 1 = 5; read: 10 = 9 distinct + 1 duplicate
    assert first == ("files 6, papers read 10 (1 duplicates merged), new 9, updated 0, unchanged 0, "
                     "skipped 5 (and 1 file(s) with no records)")
    skipped = [line.strip() for line in out.stdout.splitlines() if line.startswith("  skipped ")]
    assert len(skipped) == 6
    assert skipped[0] == "skipped empty.jsonl:0: empty file"
    assert re.fullmatch(r"skipped huge\.jsonl:1: abstract is [\d,]+ characters, longer than the 20,000 limit.*",
                        skipped[1])
    assert skipped[2] == ("skipped latin1.txt:3: title: not UTF-8 (invalid continuation byte: byte 0xe9 at "
                          "column 2); save the file as UTF-8")
    assert skipped[3:5] == ["skipped missing.csv:2: the CSV header has no abstract column",
                            "skipped missing.csv:3: the CSV header has no abstract column"]
    assert re.fullmatch(r"skipped truncated\.jsonl:3: bad JSON \(.+\)", skipped[5])
    assert "index: 9 papers," in out.stdout
