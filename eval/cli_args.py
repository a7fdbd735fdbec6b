"""Options of `rag eval`. Imports nothing heavy: `rag --help` builds this parser too."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

# The question set is package data (pyproject's package-data), so an installed `rag eval`
# finds it; results go under the working directory, never into the installed package.
DEFAULT_QUESTIONS = Path(str(resources.files("eval") / "questions.jsonl"))
DEFAULT_RESULTS = Path("eval") / "results"
# The same tuple as eval.metrics.TYPES (a test keeps them equal); not imported from there
# because eval.metrics loads the text analyser.
TYPES = ("topical", "fact", "compare", "unanswerable", "followup")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the eval options to the `rag eval` subparser."""
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                        help="question set, one JSON object per line (default: eval/questions.jsonl)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder for report.md, results.json, metrics.png "
                        "(default: eval/results/<timestamp>/ under the current directory)")
    parser.add_argument("--compare", action="store_true",
                        help="run several configurations side by side: hybrid (the default), bm25 only, "
                        "dense only, and llm when an endpoint is configured")
    parser.add_argument("--config", action="append", default=[], type=_config, metavar="NAME:KEY=VALUE,...",
                        help="add a configuration to compare, as Settings overrides, e.g. "
                        "'no-feedback:feedback_papers=0' (repeatable; implies --compare)")
    parser.add_argument("--only", choices=TYPES, metavar="TYPE",
                        help=f"only questions of this type ({', '.join(TYPES)})")
    parser.add_argument("--limit", type=_positive, metavar="N", help="only the first N questions (after --only)")


def _config(text: str) -> tuple[str, dict]:
    """`_config("rrf:fusion=rrf,max_papers=10")` -> `("rrf", {"fusion": "rrf", "max_papers": 10})`."""
    import json

    name, sep, pairs = text.partition(":")
    if not sep or not name or not pairs:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE...], not {text!r}")
    overrides = {}
    for pair in pairs.split(","):
        key, eq, value = pair.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {pair!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return name, overrides


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
