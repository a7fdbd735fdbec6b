"""`rag eval`: ask the question set through one opened pipeline and score every answer.

For each configuration (a Settings override: retrieval mode, answerer) every question is
answered with `Pipeline.answer`, timed, and scored by eval.metrics against its gold papers;
the retrieval ranking scored is the one the system searched with (`Pipeline.gather`), so a
follow-up is scored with its conversation, as a user would get it. eval.report then writes
report.md, results.json and metrics.png. This module decides nothing about quality: the
regression gate is tests/test_eval_gate.py with eval/floors.json. A failure the user can fix
is a RagError (a question the set holds that the assistant refuses becomes a ConfigError
naming it), shown in one line by the `rag eval` edge in rag/cli.py.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from eval import metrics
from eval.cli_args import DEFAULT_RESULTS
from rag.errors import ConfigError, QuestionError
from rag.render import to_markdown
from rag.settings import Settings

# --compare: name -> Settings overrides. "hybrid" is the default configuration.
COMPARE = {
    "hybrid": {"retrieval_mode": "hybrid", "answerer": "extractive"},
    "bm25": {"retrieval_mode": "bm25", "answerer": "extractive"},
    "dense": {"retrieval_mode": "dense", "answerer": "extractive"},
    "llm": {"retrieval_mode": "hybrid", "answerer": "llm"},  # only when an endpoint is configured
}


def load_questions(path: Path) -> list[dict]:
    """The question set; a malformed line is a ConfigError naming it."""
    items = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{lineno}: not JSON ({err.msg})") from None
            if not isinstance(item, dict) or item.get("type") not in metrics.TYPES or "question" not in item:
                raise ConfigError(f"{path}:{lineno}: needs a 'question' and a 'type' in {', '.join(metrics.TYPES)}")
            items.append(item)
    return items


def configurations(settings: Settings, compare: bool, extra: list[tuple[str, dict]] = ()) -> dict[str, Settings]:
    """The Settings to run: the given ones as "default", or the --compare set (llm only when
    `settings.llm_configured`) plus any `--config` ones (validated like any Settings)."""
    if not compare and not extra:
        return {"default": settings}
    configs = {name: settings.with_overrides(over) for name, over in COMPARE.items()
               if name != "llm" or settings.llm_configured}
    for name, over in extra:
        configs[name] = settings.with_overrides(over)
    return configs


def ask(pipe, item: dict, s: Settings) -> dict:
    """Answer one question (a follow-up after its first turn) and score it: one record of
    results.json."""
    history, first = None, None
    if item["type"] == "followup":
        first = pipe.answer(item["first"], None, settings=s)
        history = [{"role": "user", "content": item["first"]},
                   {"role": "assistant", "content": to_markdown(first)}]
    start = time.perf_counter()
    trace: list = []
    answer = pipe.answer(item["question"], history, settings=s, trace=trace)
    latency = time.perf_counter() - start
    # The ranking the answer was built from (none for small talk, which searches nothing).
    ranking = metrics.dedupe(src.title for src in (trace[0].ranked if trace else []))[:metrics.RANK_DEPTH]
    record = {
        "id": item["id"], "type": item["type"], **({"kind": item["kind"]} if "kind" in item else {}),
        **answer.to_dict(),
        "ranking": ranking,
        "invalid": metrics.invalid_citations(answer, pipe.index.papers.keys()),
        "scores": metrics.score(item, answer, ranking, pipe.index.papers, s.support_threshold),
        "latency_s": round(latency, 6),
    }
    if first is not None:
        record["first"] = first.to_dict()
    return record


def evaluate(pipe, questions: list[dict], s: Settings, done: Callable[[], None] | None = None) -> list[dict]:
    """One record per question for the configuration `s`. One question is answered untimed
    first, so loading the embedding model and the sentence splitter is not a question's latency."""
    pipe.answer("Which papers study warm-up schedules?", None, settings=s)
    records = []
    for item in questions:
        try:
            records.append(ask(pipe, item, s))
        except QuestionError as err:  # the set holds a question the assistant refuses: name it
            raise ConfigError(f"question {item.get('id', '?')}: {err}") from None
        if done:
            done()
    return records


def run(args, settings: Settings) -> int:
    """`rag eval`: run, print a summary table, write the results folder. Returns 0; the eval
    measures, the gate judges (tests/test_eval_gate.py)."""
    from rich.console import Console
    from tqdm import tqdm

    from eval import report
    from rag.assistant import Assistant

    questions = load_questions(args.questions)
    if args.only:
        questions = [q for q in questions if q["type"] == args.only]
    if args.limit:
        questions = questions[:args.limit]
    if not questions:
        raise ConfigError(f"no questions to run in {args.questions}")
    configs = configurations(settings, args.compare, getattr(args, "config", []))
    out = Path(args.out) if args.out else DEFAULT_RESULTS / datetime.now().strftime("%Y%m%d-%H%M%S")
    console = Console(stderr=True)
    if args.compare and not settings.llm_configured:
        console.print("llm configuration skipped: no endpoint configured (RAG_LLM_BASE_URL or OPENAI_API_KEY)")

    results: dict[str, list[dict]] = {}
    with (Assistant(settings) as assistant,
          tqdm(total=len(questions) * len(configs), desc="eval", unit="question", file=sys.stderr) as bar):
        for name, s in configs.items():
            bar.set_postfix_str(name)
            results[name] = evaluate(assistant.pipeline, questions, s, done=bar.update)
    summaries = {name: metrics.summarize(records) for name, records in results.items()}
    meta = {
        "created": datetime.now().isoformat(timespec="seconds"), "questions": str(args.questions),
        "n_questions": len(questions), "only": args.only, "limit": args.limit,
        "configs": {name: _public_settings(s) for name, s in configs.items()},
    }
    paths = report.write(out, meta, summaries, results)
    # Piped output gets the table at full width instead of rich's 80-column default.
    Console(width=None if sys.stdout.isatty() else 160).print(report.summary_table(summaries))
    for name, s in meta["configs"].items():
        if note := report.fallbacks(s, results[name]):
            console.print(f"{name}: {note}")
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _public_settings(s: Settings) -> dict:
    """The settings that shape answers, without secrets or UI options."""
    data = s.model_dump(mode="json", exclude={"llm_api_key", "ui_password", "ui_username"})
    return {k: v for k, v in data.items() if not k.startswith("ui_")}
