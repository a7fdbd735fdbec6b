"""Rendering of eval results: report.md, results.json, metrics.png and the printed table.

Input is what eval.runner produces: `summaries` ({config: {type or "overall": {metric: value}}})
and `results` ({config: [per-question record]}). Nothing here computes a score.
"""

from __future__ import annotations

import json
from pathlib import Path

# metric -> (label, kind); kind picks the number format.
ROWS = {
    "n": ("questions", "int"),
    "recall@5": ("recall@5", "share"), "recall@10": ("recall@10", "share"), "recall@20": ("recall@20", "share"),
    "mrr": ("MRR", "share"), "ndcg@10": ("nDCG@10", "share"),
    "cite_precision": ("citation precision", "share"), "cite_recall": ("citation recall", "share"),
    "cite_f1": ("citation F1", "share"), "invalid_citations": ("invalid citations (goal 0)", "int"),
    "correct": ("correct (fact, compare)", "share"), "abstention": ("abstention (unanswerable)", "share"),
    "false_abstention": ("false abstention (goal 0)", "share"), "support": ("supported sentences", "share"),
    "unsupported_removed": ("unsupported sentences removed", "int"),
    "latency_p50": ("latency p50 (ms)", "ms"), "latency_p95": ("latency p95 (ms)", "ms"),
}
# The printed table: one row per type and config, these columns.
COLUMNS = ["n", "recall@10", "ndcg@10", "mrr", "cite_precision", "cite_recall", "cite_f1", "correct",
           "abstention", "false_abstention", "support", "invalid_citations", "latency_p50", "latency_p95"]
SHORT = {"n": "n", "recall@10": "R@10", "ndcg@10": "nDCG@10", "mrr": "MRR", "cite_precision": "cite P",
         "cite_recall": "cite R", "cite_f1": "cite F1", "correct": "correct", "abstention": "abstain",
         "false_abstention": "false abst.", "support": "support", "invalid_citations": "invalid",
         "latency_p50": "p50 ms", "latency_p95": "p95 ms"}
# metrics.png: one panel each; "declined" is abstention on unanswerable, false abstention elsewhere.
PANELS = [("recall@10", "retrieval recall@10"), ("ndcg@10", "nDCG@10"), ("cite_f1", "citation F1"),
          ("correct", "correct (fact, compare)"), ("declined", "declined (want 1 on unanswerable, 0 elsewhere)"),
          ("support", "supported sentences")]


def fmt(value, kind: str) -> str:
    """`fmt(0.8333, "share")` -> "0.833"; `fmt(0.0421, "ms")` -> "42"; None -> "–"."""
    if value is None:
        return "–"
    if kind == "ms":
        return f"{value * 1000:.0f}"
    if kind == "int":
        return str(int(value))
    return f"{value:.3f}"


def groups(summaries: dict) -> list[str]:
    """Question types present in any config, in the order of the set, then "overall"."""
    seen: list[str] = []
    for per_type in summaries.values():
        seen += [t for t in per_type if t not in seen and t != "overall"]
    return seen + ["overall"]


def markdown(meta: dict, summaries: dict, results: dict) -> str:
    """report.md: overall first, then one table per question type; configs side by side."""
    configs = list(summaries)
    lines = ["# Eval report", "",
             f"{meta['n_questions']} questions from `{meta['questions']}`, {meta['created']}. "
             "Configurations: " + ", ".join(f"`{name}` ({_describe(s)})" for name, s in meta["configs"].items()) + ".",
             "Metrics are explained in docs/quality.md, \"Metrics\"; "
             "\"–\" means the metric does not apply.", ""]
    for group in ["overall"] + [g for g in groups(summaries) if g != "overall"]:
        lines += [f"## {group}", "", "| metric | " + " | ".join(configs) + " |",
                  "|---|" + "---:|" * len(configs)]
        for metric, (label, kind) in ROWS.items():
            cells = [summaries[c].get(group, {}).get(metric) for c in configs]
            if all(v is None for v in cells):
                continue
            lines.append(f"| {label} | " + " | ".join(fmt(v, kind) for v in cells) + " |")
        lines.append("")
    lines += ["## Misses", ""]
    for name, records in results.items():
        missed = [_miss(r) for r in records if _miss(r)]
        lines.append(f"- `{name}`: " + ("; ".join(missed) if missed else "none"))
    notes = [f"- `{name}`: {note}" for name, s in meta["configs"].items() if (note := fallbacks(s, results[name]))]
    if notes:
        lines += ["", "## Fallbacks", ""] + notes
    return "\n".join(lines) + "\n"


def fallbacks(settings: dict, records: list[dict]) -> str:
    """"k of n answers fell back to extractive (first note)" for an llm configuration whose
    answers did not all come from the LLM, else "" (its scores are then mostly extractive)."""
    if settings["answerer"] != "llm":
        return ""
    fell = [r for r in records if not r["abstained"] and r["answerer"] != "llm"]
    if not fell:
        return ""
    first = next((r["notes"][0] for r in fell if r["notes"]), "no note")
    return f"{len(fell)} of {len(records)} answers fell back to extractive (first note: {first})"


def _describe(s: dict) -> str:
    return f"retrieval {s['retrieval_mode']}, answerer {s['answerer']}"


def _miss(record: dict) -> str:
    """What went wrong with one question, or "" (shown in the Misses list of report.md)."""
    sc, why = record["scores"], []
    if sc.get("correct") == 0:
        why.append("wrong")
    if sc.get("abstention") == 0:
        why.append("answered")
    if sc.get("false_abstention") == 1:
        why.append("declined")
    if sc.get("invalid_citations"):
        why.append("invalid citation")
    return f"{record['id']} ({', '.join(why)})" if why else ""


def summary_table(summaries: dict):
    """A rich Table: one row per question type and config, the headline metrics as columns."""
    from rich.table import Table

    table = Table(title="rag eval", show_lines=False)
    table.add_column("type")
    table.add_column("config")
    for metric in COLUMNS:
        table.add_column(SHORT[metric], justify="right")
    for group in groups(summaries):
        for i, (name, per_type) in enumerate(summaries.items()):
            row = per_type.get(group)
            if row is None:
                continue
            table.add_row(group if i == 0 else "", name, *(fmt(row.get(m), ROWS[m][1]) for m in COLUMNS),
                          end_section=i == len(summaries) - 1)
    return table


def plot(summaries: dict, path: Path) -> None:
    """metrics.png: grouped bars, one panel per headline metric, types on x, one bar per config."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    configs = list(summaries)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    width = 0.8 / len(configs)
    for ax, (metric, title) in zip(axes.flat, PANELS):
        # Only the types the metric applies to, so a missing bar always means a real 0.
        types = [t for t in groups(summaries)
                 if any(_panel_value(summaries[c].get(t, {}), t, metric) is not None for c in configs)]
        for i, name in enumerate(configs):
            values = [_panel_value(summaries[name].get(t, {}), t, metric) for t in types]
            xs = [x + (i - (len(configs) - 1) / 2) * width for x in range(len(types))]
            ax.bar(xs, [v if v is not None else 0 for v in values], width, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(types)), types, rotation=20, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _panel_value(row: dict, group: str, metric: str):
    if metric == "declined":
        return row.get("abstention") if group == "unanswerable" else row.get("false_abstention")
    return row.get(metric)


def write(out: Path, meta: dict, summaries: dict, results: dict) -> list[Path]:
    """Write report.md, results.json and metrics.png into `out` (created); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    report, data, figure = out / "report.md", out / "results.json", out / "metrics.png"
    report.write_text(markdown(meta, summaries, results), encoding="utf-8")
    data.write_text(json.dumps({"meta": meta, "summary": summaries, "questions": results},
                               indent=1, ensure_ascii=False), encoding="utf-8")
    plot(summaries, figure)
    return [report, data, figure]
