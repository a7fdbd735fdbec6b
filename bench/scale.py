"""`python -m bench.scale [--max 1000000]`: the synthetic corpus (bench.synth) in a real Chroma
server at growing sizes (10k and 100k by default; 1M with `--max 1000000`).

The script starts `chroma run --path DIR --host 127.0.0.1 --port N` itself, then streams
synthetic papers into it through `rag.store.Store` in batches: one chunk per paper, in the
same collections, ids and metadata the assistant writes, so `build_pipeline` can open the
result. At each size it measures, in this order:
- load rate (papers per second since the previous size) and the loader's own RSS, sampled
  while streaming: it holds one batch at a time, so it stays flat as the corpus grows;
- Chroma dense query latency (top-100 chunks, as `Index.dense` asks) for the eval questions;
- BM25 (bm25s over the same texts with the project's analyser): build time and query p50,
  in a child process, which regenerates the same papers from the seed;
- the assistant itself (up to `--app-max` papers): `build_pipeline` against the server, in a
  child process, then warm `retrieve()`; opening loads every paper and chunk into memory.
Children do the heavy one-off work so the loader's memory stays its own; one runs at a time.
Results go into the "scale" key of results.json, the scale section of results.md and a PNG.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bench.measure import QUESTIONS, ROOT, VENV_BIN, bench_env, load_questions, peak_rss_mb, rss_mb, summary
from bench.synth import Base, SynthPaper, base_from_settings, synth_papers
from rag.chunking import chunk_id, embedded_text
from rag.corpus import content_hash
from rag.models import Paper
from rag.settings import Settings
from rag.store import Store, open_client, paper_metadata

SIZES = (10_000, 100_000, 1_000_000)
N_RESULTS = 100  # Settings.candidate_chunks: what Index.dense asks Chroma for


# --- the Chroma server --------------------------------------------------------------------
def start_server(path: Path, port: int, log_file: Path) -> subprocess.Popen:
    """`chroma run` on loopback; returns once it answers, raises if it dies first."""
    import socket

    log = open(log_file, "wb")
    proc = subprocess.Popen([str(VENV_BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=bench_env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma server exited with {proc.returncode}; see {log_file}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"chroma server not listening on {port} after 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its descendants (the server may fork workers)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += rss_mb(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ValueError):
                pass
    return round(total, 1)


# --- loading --------------------------------------------------------------------------------
def add_batch(store: Store, papers: list[SynthPaper]) -> None:
    """Write papers as the assistant's ingest would: chunks first, then the paper records
    (the commit markers), with the same ids, documents and metadata."""
    texts = [embedded_text(p.title, p.abstract) for p in papers]
    vectors = np.stack([p.vector for p in papers])
    store.chunks.add(ids=[chunk_id(p.paper_id, t) for p, t in zip(papers, texts)], embeddings=vectors,
                     documents=texts, metadatas=[{"paper_id": p.paper_id, "index": 0} for p in papers])
    records = [Paper(paper_id=p.paper_id, title=p.title, abstract=p.abstract, source="synthetic") for p in papers]
    store.papers.add(ids=[p.paper_id for p in papers], embeddings=vectors, documents=[p.abstract for p in papers],
                     metadatas=[paper_metadata(r, content_hash(r), 1) for r in records])


def load(store: Store, papers: Iterable[SynthPaper], batch: int,
         on_batch: Callable[[int], None] | None = None) -> int:
    """Stream `papers` into `store`, `batch` at a time; returns how many were written."""
    it, written = iter(papers), 0
    while chunk := list(islice(it, batch)):
        add_batch(store, chunk)
        written += len(chunk)
        if on_batch:
            on_batch(written)
    return written


def dense_latency_ms(store: Store, query_vectors: np.ndarray, n_results: int = N_RESULTS) -> tuple[dict, int]:
    """Chroma query latency over the query vectors (one untimed warm-up); also the smallest
    number of hits any query returned."""
    store.chunks.query(query_embeddings=[query_vectors[0]], n_results=n_results, include=["metadatas", "distances"])
    times, fewest = [], n_results
    for vec in query_vectors:
        t = time.perf_counter()
        res = store.chunks.query(query_embeddings=[vec], n_results=n_results, include=["metadatas", "distances"])
        times.append((time.perf_counter() - t) * 1000)
        fewest = min(fewest, len(res["ids"][0]))
    return summary(times, 2), fewest


# --- child processes -------------------------------------------------------------------------
def _in_child(fn, *args):
    """Run `fn(*args)` in a fresh spawned process and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def query_vectors(questions: list[str], model: str) -> np.ndarray:
    from rag.embedding import Embedder

    return Embedder(model).embed(questions)


def bm25_point(base: Base, n: int, seed: int, questions: list[str], k: int = N_RESULTS) -> dict:
    """Build the BM25 index of the first `n` synthetic papers the way `Index` does, and query it."""
    import bm25s

    from rag.text import terms

    t = time.perf_counter()
    tokens = [terms(embedded_text(p.title, p.abstract)) for p in synth_papers(base, n, seed, vectors=False)]
    analyse = time.perf_counter() - t
    t = time.perf_counter()
    index = bm25s.BM25()
    index.index(tokens, show_progress=False)
    build = time.perf_counter() - t
    del tokens
    times = []
    for q in questions:
        t = time.perf_counter()
        index.retrieve([terms(q)], k=min(k, n), show_progress=False, n_threads=1)
        times.append((time.perf_counter() - t) * 1000)
    return {"analyse_seconds": round(analyse, 2), "index_seconds": round(build, 2),
            "build_seconds": round(analyse + build, 2), "query_ms": summary(times, 2), "peak_rss_mb": peak_rss_mb()}


def app_point(host: str, port: int, data_dir: str, questions: list[str]) -> dict:
    """The assistant against the server: open the index, then warm `retrieve()`."""
    from rag.pipeline import build_pipeline

    s = Settings(chroma_host=host, chroma_port=port, data_dir=Path(data_dir))
    t = time.perf_counter()
    pipe = build_pipeline(s)
    open_seconds = time.perf_counter() - t
    pipe.retrieve(questions[0])  # loads the model
    times, hits = [], 0
    for q in questions:
        t = time.perf_counter()
        hits += bool(pipe.retrieve(q, k=10))
        times.append((time.perf_counter() - t) * 1000)
    return {"open_seconds": round(open_seconds, 2), "retrieve_ms": summary(times, 2),
            "answered_share": round(hits / len(questions), 3), "peak_rss_mb": peak_rss_mb()}


# --- the run ---------------------------------------------------------------------------------
def run_scale(base: Base, sizes: list[int], seed: int, batch: int, host: str, port: int, server_pid: int | None,
              questions: list[str], qvecs: np.ndarray, app_max: int, work: Path, log=print) -> dict:
    settings = Settings(chroma_host=host, chroma_port=port, data_dir=work)
    store = Store(open_client(settings), settings.embed_model)
    stream = synth_papers(base, max(sizes), seed)
    points, trace, loaded = [], [], 0

    def sample(written: int) -> None:
        if (loaded + written) % (batch * 10) == 0:
            trace.append((loaded + written, rss_mb()))

    for size in sorted(sizes):
        t = time.perf_counter()
        added = load(store, islice(stream, size - loaded), batch, sample)
        seconds = time.perf_counter() - t
        loaded += added
        papers, chunks = store.counts()
        assert papers == chunks == loaded, (papers, chunks, loaded)
        query_ms, fewest = dense_latency_ms(store, qvecs)
        point = {"papers": loaded, "load_seconds": round(seconds, 2), "load_rate": round(added / seconds, 1),
                 "loader_rss_mb": rss_mb(), "server_rss_mb": tree_rss_mb(server_pid) if server_pid else 0.0,
                 "query_ms": query_ms, "fewest_hits": fewest}
        log(f"scale: {loaded:,} papers loaded at {point['load_rate']:,.0f}/s; Chroma query p50 {query_ms['p50']} ms")
        point["bm25"] = _in_child(bm25_point, base, loaded, seed, questions)
        log(f"scale: BM25 over {loaded:,}: build {point['bm25']['build_seconds']} s")
        if loaded <= app_max:
            try:
                point["app"] = _in_child(app_point, host, port, str(work), questions)
                log(f"scale: assistant open {point['app']['open_seconds']} s, retrieve p50 "
                    f"{point['app']['retrieve_ms']['p50']} ms")
            except Exception as err:  # a finding, not a crash of the benchmark: record it
                point["app"] = {"error": f"{type(err).__name__}: {err}"[:300]}
                log(f"scale: the assistant failed to open {loaded:,} papers: {point['app']['error']}")
        points.append(point)
    return {"points": points, "loader_rss_trace": _trace_text(trace)}


def _trace_text(trace: list[tuple[int, float]], keep: int = 8) -> str:
    if not trace:
        return "-"
    step = max(1, len(trace) // keep)
    picked = trace[::step] + ([trace[-1]] if (len(trace) - 1) % step else [])
    return ", ".join(f"{n:,} papers: {mb:.0f} MiB" for n, mb in picked)


def chart(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["papers"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(x, [p["query_ms"]["p50"] for p in points], "o-", label="Chroma dense query p50 (top-100)")
    ax.plot(x, [p["query_ms"]["p95"] for p in points], "o--", label="Chroma dense query p95")
    ax.plot(x, [p["bm25"]["query_ms"]["p50"] for p in points], "s-", label="BM25 (bm25s) query p50")
    app = [(p["papers"], p["app"]["retrieve_ms"]["p50"]) for p in points if "retrieve_ms" in p.get("app", {})]
    if app:
        ax.plot(*zip(*app), "^-", label="assistant retrieve() p50 (hybrid)")
    for p in points:
        if "error" in p.get("app", {}):
            ax.annotate("assistant cannot open\nthe index here", (p["papers"], p["query_ms"]["p95"]),
                        textcoords="offset points", xytext=(-60, 25), fontsize=8, color="firebrick",
                        arrowprops={"arrowstyle": "->", "color": "firebrick"})
    ax.set_xscale("log")
    ax.set_xlabel("papers in the index (synthetic)")
    ax.set_ylabel("latency, ms")
    ax.set_title("Query latency against corpus size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from bench.measure import machine
    from bench.report import write_results

    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=100_000, help="largest size to run (sizes: 10k, 100k, 1M)")
    parser.add_argument("--sizes", type=int, nargs="+", help="explicit sizes instead of --max")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000, help="papers per write")
    parser.add_argument("--app-max", type=int, default=100_000, help="run the assistant itself up to this size")
    parser.add_argument("--data-dir", type=Path, help="index of the real corpus to recombine (default: RAG_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--keep", type=Path,
                        help="keep the server's data in this directory (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes or [s for s in SIZES if s <= args.max])

    # Read the real index from a copy: the user's store is never opened for writing.
    real = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    shutil.copytree(real.data_dir, work / "base", dirs_exist_ok=True)
    base = base_from_settings(Settings(data_dir=work / "base"))
    questions = load_questions(QUESTIONS)
    qvecs = _in_child(query_vectors, questions, real.embed_model)

    server_dir = args.keep or work / "server"
    port = free_port()
    proc = start_server(server_dir, port, work / "chroma.log")
    started = machine()
    try:
        result = run_scale(base, sizes, args.seed, args.batch, "127.0.0.1", port, proc.pid, questions, qvecs,
                           args.app_max, work / "app", log=lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        stop_server(proc)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    chart_path = args.out / "scale.png"
    chart(result["points"], chart_path)
    results["scale"] = {"date": started["date"], "machine_load_at_start": started["load_average_at_start"],
                        "seed": args.seed, "batch": args.batch, "n_results": N_RESULTS, "queries": len(questions),
                        "chart": chart_path.name, **result}
    results.setdefault("machine", started)
    write_results(results, args.out)
    print(f"scale: wrote {args.out / 'results.md'} and {chart_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
