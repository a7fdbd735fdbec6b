"""Options of `rag eval`. Imports nothing heavy: `rag --help` builds this parser too."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
# The same tuple as eval.metrics.TYPES (a test keeps them equal); not imported from there
# because eval.metrics loads the text analyser.
TYPES = ("topical", "fact", "compare", "unanswerable", "followup")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the eval options to the `rag eval` subparser."""
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                        help="question set, one JSON object per line (default: eval/questions.jsonl)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder for report.md, results.json, metrics.png "
                        "(default: eval/results/<timestamp>/)")
    parser.add_argument("--compare", action="store_true",
                        help="run several configurations side by side: hybrid (the default), bm25 only, "
                        "dense only, and llm when an endpoint is configured")
    parser.add_argument("--only", choices=TYPES, metavar="TYPE",
                        help=f"only questions of this type ({', '.join(TYPES)})")
    parser.add_argument("--limit", type=_positive, metavar="N", help="only the first N questions (after --only)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
