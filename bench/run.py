"""`python -m bench.run [--quick] [--out bench/]`: speed and memory of the assistant against
the hardware floor, on the bundled corpus; writes results.json and results.md under --out.

Each measurement runs in its own process (see `bench.stages`), so every figure comes with
that process's own peak RSS and no measurement inherits a warm cache from another. Sections:
build (fresh ingest vs. sentence-transformers alone on the same chunk texts), noop (re-ingest
in-process and as `rag ingest`), warm (`retrieve`/`answer` p50/p95), cold (`rag ask` in a new
process vs. a process that only imports chromadb + sentence_transformers and loads the model;
`rag --help` and `rag stats`), newcomer (install done -> URL and first answer, with and
without the shipped vectors: `bench.newcomer`), backends (torch / ONNX / ONNX int8 per packaged
model: `bench.backends`), retrieve (warm `retrieve()` p50/p95 of the default model with each
backend's question embedding, interleaved on the build's index). The scale section of the
results is written by `bench.scale` and kept here. The build section turns the shipped vectors
off: it times the embedder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.measure import QUESTIONS, ROOT, VENV_BIN, bench_env, machine, run_process, summary
from bench.report import write_results
from rag.embedding import model_path, model_slug
from rag.models_registry import MODELS
from rag.settings import BUNDLED_CORPUS, Settings

SECTIONS = ("newcomer", "build", "noop", "warm", "cold", "backends", "retrieve")
DEFAULT_MODEL = Settings.model_fields["embed_model"].default
COLD_QUESTION = "Which papers bridge CNNs and ViTs?"

# The floor of a cold `rag ask`: the heavy imports it needs and the model load, nothing else.
FLOOR_SCRIPT = """
import sys
import chromadb
import sentence_transformers
sentence_transformers.SentenceTransformer(sys.argv[1], device="cpu", local_files_only=True)
"""


def stage(name: str, **params) -> dict:
    """Run one `bench.stages` stage in a new process; its result plus wall time and peak RSS."""
    run = run_process([sys.executable, "-m", "bench.stages", name, json.dumps(params)],
                      env=bench_env(), cwd=ROOT, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"stage {name} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(run.seconds, 3)
    result["process_peak_rss_mb"] = run.peak_rss_mb
    return result


def timed_runs(argv: list[str], reps: int, env: dict) -> dict:
    """Wall time and peak RSS of `reps` runs of a command; fails loudly if one fails."""
    runs = []
    for _ in range(reps):
        run = run_process(argv, env=env, cwd=ROOT)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({run.returncode}):\n{run.stderr[-3000:]}")
        runs.append(run)
    return {"seconds": summary([r.seconds for r in runs], 3), "peak_rss_mb": max(r.peak_rss_mb for r in runs)}


def cold_section(index: Path, corpus: Path, reps: int, fast_reps: int, model: str) -> dict:
    env = bench_env(RAG_DATA_DIR=str(index), RAG_EMBED_MODEL=model)
    rag = str(VENV_BIN / "rag")
    ask, floor = [], []
    for _ in range(reps):  # interleaved, so a burst of load elsewhere hits both alike
        ask.append(timed_runs([rag, "ask", COLD_QUESTION], 1, env))
        floor.append(timed_runs([sys.executable, "-c", FLOOR_SCRIPT, str(model_path(model))], 1, env))
    ask_s = summary([a["seconds"]["median"] for a in ask], 3)
    floor_s = summary([f["seconds"]["median"] for f in floor], 3)
    return {
        "question": COLD_QUESTION,
        "ask": {"seconds": ask_s, "peak_rss_mb": max(a["peak_rss_mb"] for a in ask)},
        "floor": {"seconds": floor_s, "peak_rss_mb": max(f["peak_rss_mb"] for f in floor)},
        "ratio": round(ask_s["median"] / floor_s["median"], 3),
        "help": timed_runs([rag, "--help"], fast_reps, env),
        "stats": timed_runs([rag, "stats"], fast_reps, env),
        "python_startup": timed_runs([sys.executable, "-c", "pass"], fast_reps, env),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of each slow measurement, backends on a sample")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.md/json go")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work",
                        help="scratch space: the benchmark's own index, exported ONNX models")
    parser.add_argument("--corpus", type=Path, default=BUNDLED_CORPUS)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections (others are kept)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="embedding model measured (default: the default, %(default)s); another model's "
                        "build and warm figures go to the per-model table only")
    args = parser.parse_args(argv)

    quick = args.quick
    sections = args.only or SECTIONS
    if model_slug(args.model) != model_slug(DEFAULT_MODEL):
        sections = [name for name in sections if name in ("build", "warm")]  # the per-model table's
    model = args.model
    index = args.work / f"index-{model_slug(model)}"
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = machine()
    results.pop("mode", None)  # older layout
    common = {"corpus": str(args.corpus)}
    load = [results["machine"]["load_average_at_start"]]  # at the start of the next section

    def done(name: str, value: dict) -> None:
        value = {"mode": "quick" if quick else "full", "load_average_at_start": load[0], "model": model, **value}
        if name in ("build", "warm"):
            results.setdefault("models", {}).setdefault(model_slug(model), {})[name] = value
        if model_slug(model) == model_slug(DEFAULT_MODEL):
            results[name] = value
        load[0] = [round(x, 2) for x in os.getloadavg()]
        write_results(results, args.out)  # after each section: a late failure loses nothing
        print(f"bench: {name} done", file=sys.stderr)

    if "build" in sections:
        done("build", stage("build", keep=str(index), reps=1 if quick else 3, model=model, **common))
    if {"noop", "warm", "cold", "retrieve"} & set(sections) and not (index / "chroma" / "chroma.sqlite3").exists():
        parser.error(f"no benchmark index at {index}: run the build section first")
    if "noop" in sections:
        noop = stage("noop", index=str(index), reps=3 if quick else 5, model=model, **common)
        noop["cli"] = timed_runs([str(VENV_BIN / "rag"), "ingest", "--quiet", str(args.corpus)], 2 if quick else 3,
                                 bench_env(RAG_DATA_DIR=str(index), RAG_EMBED_MODEL=model))
        done("noop", noop)
    if "warm" in sections:
        done("warm", stage("warm", index=str(index), questions=str(QUESTIONS), passes=1 if quick else 3,
                           model=model, **common))
    if "cold" in sections:
        done("cold", cold_section(index, args.corpus, 2 if quick else 3, 3 if quick else 5, model))
    if "newcomer" in sections:
        from bench.newcomer import newcomer_section

        done("newcomer", newcomer_section(model, Settings(embed_model=model).embed_backend, reps=1 if quick else 3))
    if "backends" in sections:
        models = [spec.name for spec in MODELS.values()]
        done("backends", stage("backends", work=str(args.work), questions=str(QUESTIONS), models=models,
                               every=8 if quick else 4, quality_every=8 if quick else 1, reps=1 if quick else 3,
                               **common))
    if "retrieve" in sections:
        done("retrieve", stage("retrieve", index=str(index), questions=str(QUESTIONS), model=model, **common))
    print(f"bench: wrote {args.out / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
