"""The README's table of current quality and speed figures, generated from committed results.

    python -m docs.figures                       # rewrite the README block from the committed files
    python -m docs.figures --check               # exit 1 when the README block is out of date
    python -m docs.figures --eval MAIN_DIR --generalization GEN_DIR --realistic REAL_DIR
                                                 # first refresh eval/summary.json

Inputs: `eval/summary.json` (a compact digest of `rag eval` results folders, written by
`--eval`, so the 1-2 MB results.json files stay out of the repository) and
`bench/results.json` (written by `make bench` and `python -m bench.scale`). Output: the lines
between `<!-- figures:start -->` and `<!-- figures:end -->` in README.md. Nothing here measures
anything: figures change only when the eval or the benchmark is re-run and this is run again.
tests/test_docs.py checks that the README block equals what this module generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from docs.generated import sync

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EVAL_SUMMARY = ROOT / "eval" / "summary.json"
BENCH_RESULTS = ROOT / "bench" / "results.json"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"

# What the digest keeps of each question type's row (eval.metrics.AGGREGATION names).
KEPT = ("n", "recall@10", "recall@20", "mrr", "ndcg@10", "cite_precision", "cite_recall", "cite_f1",
        "invalid_citations", "correct", "abstention", "false_abstention", "yes_no", "latency_p50", "latency_p95")


def digest(results: dict) -> dict:
    """The compact form of one `rag eval` results.json: its default configuration's summary
    rows (the "default" configuration, or "hybrid" from `--compare`), metrics in `KEPT`.

    >>> digest({"meta": {"created": "2026-12-06T20:00:00", "n_questions": 2,
    ...                  "configs": {"default": {"embed_model": "m", "answerer": "extractive"}}},
    ...         "summary": {"default": {"overall": {"n": 2, "mrr": 0.75, "support": 1.0}}}})
    {'created': '2026-12-06T20:00:00', 'questions': 2, 'embed_model': 'm', 'answerer': 'extractive', \
'summary': {'overall': {'n': 2, 'mrr': 0.75}}}
    """
    summary = results["summary"]
    name = "default" if "default" in summary else "hybrid"
    config = results["meta"]["configs"][name]
    return {"created": results["meta"]["created"], "questions": results["meta"]["n_questions"],
            "embed_model": config["embed_model"], "answerer": config["answerer"],
            "summary": {group: {k: row[k] for k in KEPT if k in row} for group, row in summary[name].items()}}


def write_eval_summary(main: Path, generalization: Path | None, out: Path = EVAL_SUMMARY,
                       realistic: Path | None = None) -> None:
    """eval/summary.json from results folders of `rag eval` (main set, generalisation set, and
    the realistic set that was written blind and scored once)."""
    sets = {"main": digest(json.loads((main / "results.json").read_text(encoding="utf-8")))}
    for name, folder in (("generalization", generalization), ("realistic", realistic)):
        if folder is not None:
            sets[name] = digest(json.loads((folder / "results.json").read_text(encoding="utf-8")))
    data = {"about": "Digest of `rag eval` results (default configuration) that the README's figures table is "
                     "generated from: python -m docs.figures --eval MAIN_DIR --generalization GEN_DIR "
                     "--realistic REAL_DIR.",
            "sets": sets}
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _f(value, digits: int = 3) -> str:
    """A figure as the tables print it: `_f(0.8081)` -> `'0.808'`; `_f(None)` -> `'–'`."""
    return "–" if value is None else f"{value:.{digits}f}"


def _ms(stat: dict) -> str:
    """`_ms({"p50": 65.68, "p95": 73.44})` -> `'66 / 73 ms'`."""
    return f"{stat['p50']:.0f} / {stat['p95']:.0f} ms"


def quality_rows(sets: dict) -> list[tuple[str, str, str]]:
    """(measure, figure, set) rows from eval/summary.json's "sets"."""
    rows = []
    main = sets["main"]["summary"]
    n = sets["main"]["questions"]
    overall, topical = main["overall"], main.get("topical", {})
    where = f"main set ({n} questions)"
    rows += [
        ("recall@10 / recall@20, all answerable questions", f"{_f(overall['recall@10'])} / {_f(overall['recall@20'])}",
         where),
        ("MRR / nDCG@10", f"{_f(overall['mrr'])} / {_f(overall['ndcg@10'])}", where),
        ("topical recall@10", _f(topical.get("recall@10")), where),
        ("citation precision / recall / F1",
         f"{_f(overall['cite_precision'])} / {_f(overall['cite_recall'])} / {_f(overall['cite_f1'])}", where),
        ("invalid citations", str(overall["invalid_citations"]), where),
        ("correct: fact / compare answers",
         f"{_f(main.get('fact', {}).get('correct'))} / {_f(main.get('compare', {}).get('correct'))}", where),
        ("unanswerable declined / answerable falsely declined",
         f"{_f(main.get('unanswerable', {}).get('abstention'))} / {_f(overall['false_abstention'])}", where),
    ]
    if "generalization" in sets:
        gen = sets["generalization"]["summary"]
        where = f"held-out set ({sets['generalization']['questions']} questions)"
        rows += [
            ("topical recall@10 / citation F1", f"{_f(gen.get('topical', {}).get('recall@10'))} / "
             f"{_f(gen['overall']['cite_f1'])}", where),
            ("compare correct / near misses declined / false abstention",
             f"{_f(gen.get('compare', {}).get('correct'))} / {_f(gen.get('unanswerable', {}).get('abstention'))} / "
             f"{_f(gen['overall']['false_abstention'])}", where),
        ]
    if "realistic" in sets:
        real = sets["realistic"]["summary"]
        overall = real["overall"]
        where = f"realistic wording, written blind, scored once ({sets['realistic']['questions']} questions)"
        rows += [
            ("citation precision / recall / F1",
             f"{_f(overall['cite_precision'])} / {_f(overall['cite_recall'])} / {_f(overall['cite_f1'])}", where),
            ("correct: fact, how, origin, numeric answers / yes-no answers",
             f"{_f(overall.get('correct'))} / {_f(overall.get('yes_no'))}", where),
            ("unanswerable declined / answerable falsely declined",
             f"{_f(real.get('unanswerable', {}).get('abstention'))} / {_f(overall['false_abstention'])}", where),
        ]
    return rows


def speed_rows(bench: dict) -> list[tuple[str, str, str]]:
    """(measure, figure, where) rows from bench/results.json."""
    rows = []
    build, warm, cold, noop = bench["build"], bench["warm"], bench["cold"], bench["noop"]
    cores = bench.get("machine", {}).get("cores")
    where = f"`make bench`, {build['model']}, {cores} CPU cores" if cores else f"`make bench`, {build['model']}"
    newcomer = bench.get("newcomer", {}).get("shipped")
    if newcomer:  # what `make run` costs after its install, with the vectors that ship in the package
        rows += [
            ("`make run` after its install: install done -> chat UI URL printed",
             f"{newcomer['install_to_url_seconds']['p50']:.1f} s", where),
            ("first `rag ingest` of the bundled corpus, shipped vectors", f"{newcomer['ingest_seconds']['p50']:.1f} s",
             where),
        ]
    rows += [
        (f"`rag ingest` of the bundled corpus embedding every chunk ({build['papers']} papers, "
         f"{build['chunks']} chunks)",
         f"{build['build_seconds']['p50']:.0f} s ({build['ratio']:.2f}x the encoding floor)", where),
        ("`rag ingest` again, nothing changed (new process)", f"{noop['cli']['seconds']['p50']:.1f} s", where),
        ("warm `retrieve()` p50 / p95, a new question", _ms(warm["new_retrieve_ms"]), where),
        ("warm `answer()` p50 / p95, a new question", _ms(warm["new_answer_ms"]), where),
        ("cold `rag ask` (new process, model load included)", f"{cold['ask']['seconds']['p50']:.1f} s", where),
    ]
    for model, parts in sorted(bench.get("models", {}).items()):
        if model == _slug(build["model"]) or "build" not in parts or "warm" not in parts:
            continue
        label = f"`make bench`, {parts['build']['model']}" + (f", {cores} CPU cores" if cores else "")
        rows += [
            ("`rag ingest` of the bundled corpus embedding every chunk",
             f"{parts['build']['build_seconds']['p50']:.0f} s", label),
            ("warm `answer()` p50 / p95, a new question", _ms(parts["warm"]["new_answer_ms"]), label),
        ]
    points = bench.get("scale", {}).get("points", [])
    if points:
        top = max(points, key=lambda p: p["papers"])
        where = f"`python -m bench.scale`, {top['papers']:,} papers on a Chroma server"
        app = top["app"]
        rows += [
            ("open the index and answer a first question", f"{app['open_seconds']:.1f} s "
             f"({app['rss_after_open_mb']:,.0f} MiB)", where),
            ("warm hybrid `retrieve()` p50 / p95", _ms(app["retrieve_ms"]), where),
            ("loading rate into the server", f"{top['load_rate']:,.0f} papers/s", where),
            ("papers added by another process, visible after", f"{app['new_papers']['visible_after_seconds']:.1f} s",
             where),
        ]
    return rows


def _slug(model: str) -> str:
    """`_slug("all-MiniLM-L6-v2")` -> `'all-minilm-l6-v2'` (the key bench/results.json uses)."""
    return model.lower().replace("/", "-")


def block(summary: dict, bench: dict) -> str:
    """The generated lines between the markers (markers excluded)."""
    from rag.settings import Settings

    sets = summary["sets"]
    main = sets["main"]
    default_model = Settings.model_fields["embed_model"].default
    model = (f"the default model, {main['embed_model']}" if main["embed_model"] == default_model else
             f"`RAG_EMBED_MODEL={main['embed_model']}` (the default is {default_model})")
    lines = [
        "<!-- generated by `python -m docs.figures` from eval/summary.json and bench/results.json: "
        "do not edit by hand -->",
        "",
        f"Quality: `rag eval` with {model}, the {main['answerer']} answerer and every other setting at "
        f"its default, run {main['created'][:10]}. Speed: `make bench`, run {bench['machine']['date'][:10]} "
        f"({bench['machine']['cpu']}, {bench['machine']['cores']} cores).",
        "",
        "| measure | figure | measured on |",
        "|---|---:|---|",
    ]
    lines += [f"| {m} | {v} | {w} |" for m, v, w in quality_rows(sets) + speed_rows(bench)]
    return "\n".join(lines)


def render(readme: str, generated: str) -> str:
    """`readme` with the text between the markers replaced by `generated`.

    >>> render("a\\n<!-- figures:start -->\\nold\\n<!-- figures:end -->\\nb\\n", "new")
    'a\\n<!-- figures:start -->\\nnew\\n<!-- figures:end -->\\nb\\n'
    """
    head, found, rest = readme.partition(START)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    return f"{head}{START}\n{generated}\n{END}{tail}"


def current(readme_path: Path = README) -> tuple[str, str]:
    """(the README as it is, the README as it should be)."""
    summary = json.loads(EVAL_SUMMARY.read_text(encoding="utf-8"))
    bench = json.loads(BENCH_RESULTS.read_text(encoding="utf-8"))
    text = readme_path.read_text(encoding="utf-8")
    return text, render(text, block(summary, bench))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the README block is out of date")
    parser.add_argument("--eval", type=Path, metavar="DIR", help="a `rag eval` results folder of the main set: "
                        "refresh eval/summary.json from it first")
    parser.add_argument("--generalization", type=Path, metavar="DIR",
                        help="a `rag eval --questions eval/generalization.jsonl` results folder")
    parser.add_argument("--realistic", type=Path, metavar="DIR",
                        help="a `rag eval` results folder of the realistic set written blind and scored once")
    args = parser.parse_args(argv)
    if args.eval:
        write_eval_summary(args.eval, args.generalization, realistic=args.realistic)
    text, wanted = current()
    return sync(README, text, wanted, args.check, "python -m docs.figures", "README.md's figures table")


if __name__ == "__main__":
    sys.exit(main())
