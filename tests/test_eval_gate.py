"""Regression gate: the whole question set on the default configuration, against
eval/floors.json. A metric under its floor (or over its ceiling) fails, naming each one.

Floors sit a little under the values measured when they were set; they only ever move up
(ceilings only down), so an improvement is locked in by raising them. See docs/quality.md, "The regression gate".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.cli_args import DEFAULT_QUESTIONS
from eval.metrics import AGGREGATION, TYPES, summarize
from eval.runner import evaluate, load_questions

FLOORS = Path(__file__).resolve().parent.parent / "eval" / "floors.json"  # the checkout's; not package data
# Realistic wording: both first halves gated together under floors["realistic"], the fresh sets
# (each written blind, scored once before its floors were set) under floors["realistic_fresh"]
# to ["realistic_fresh8"].
REALISTIC = {"realistic": ("realistic_tune.jsonl", "realistic_heldout.jsonl"),
             **{f"realistic_{name}": (f"realistic_{name}.jsonl",)
                for name in ("fresh", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6", "fresh7", "fresh8")}}


def gates() -> dict:
    return json.loads(FLOORS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("section", ["main", *REALISTIC])
def test_gates_name_existing_metrics(section):
    data = gates() if section == "main" else gates()[section]
    keys = list(data["floors"]) + list(data["ceilings"])
    assert data["floors"], "no floors set"
    for key in keys:
        group, _, metric = key.partition(".")
        assert (group in (*TYPES, "overall") or group.startswith("kind:")) and metric in AGGREGATION, \
            f"{key}: not <type, kind:<kind> or overall>.<metric>"
    assert not [k for k in keys if "latency" in k], "no wall-clock gates: latency depends on the machine"


@pytest.fixture(scope="module")
def records(default_pipeline, default_settings) -> list[dict]:
    """The default configuration (Settings defaults: the default embedding model with its
    per-model values, hybrid retrieval, extractive answers)."""
    return evaluate(default_pipeline, load_questions(DEFAULT_QUESTIONS), default_settings)


def test_default_configuration_meets_its_floors(records):
    _check(gates(), records)


@pytest.mark.parametrize("section", list(REALISTIC))
def test_default_configuration_meets_its_floors_on_the_realistic_sets(section, default_pipeline, default_settings):
    """The questions worded the way people ask, each group against its own floors."""
    questions = [q for name in REALISTIC[section] for q in load_questions(FLOORS.parent / name)]
    _check(gates()[section], evaluate(default_pipeline, questions, default_settings))


def _check(data: dict, records: list[dict]) -> None:
    summary, failures = summarize(records), []
    for key, floor in data["floors"].items():
        group, _, metric = key.partition(".")
        value = summary.get(group, {}).get(metric)
        if value is None or value < floor:
            failures.append(f"{key} = {_show(value)} is below its floor {floor}")
    for key, ceiling in data["ceilings"].items():
        group, _, metric = key.partition(".")
        value = summary.get(group, {}).get(metric)
        if value is None or value > ceiling:
            failures.append(f"{key} = {_show(value)} is above its ceiling {ceiling}")
    invalid = {r["id"]: r["invalid"] for r in records if r["invalid"]}
    measured = {f"{g}.{m}": round(v, 4) for g, row in summary.items() for m, v in row.items()
                if isinstance(v, (int, float)) and m in AGGREGATION}
    assert not failures, ("\n".join(failures) + (f"\ninvalid citations: {invalid}" if invalid else "")
                          + "\nmeasured: " + json.dumps(measured, indent=1))


def _show(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
