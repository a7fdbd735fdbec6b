"""`python -m bench.scale [--max 1000000]`: the synthetic corpus (bench.synth) in a real Chroma
server at growing sizes (10k and 100k by default; 1M with `--max 1000000`).

The script starts `chroma run --path DIR --host 127.0.0.1 --port N` itself, measures the
server's own insert ceiling (a bare `HttpClient.add` loop), then streams synthetic papers into
it with `Loader`: one chunk per paper, written by `rag.ingest`'s own functions (the chunk
metadata with the filter fields, `commit_papers`: lexical documents, the server's ingest log,
the paper records last), so `build_pipeline` opens the result as it opens a `rag ingest`. At
each size, in this order:
- load rate (papers per second since the previous size), the load average when the size
  started, the loader's RSS (sampled while streaming: it holds a few batches at a time, so it
  stays flat) and the server's;
- Chroma dense query latency (top-100 chunks, as `Index.dense` asks) for the eval questions;
- the persistent lexical index's size on disk;
- the assistant itself, in a child process with the model loaded first (its load is not
  timed): `build_pipeline` plus the first `answer()` (the open), RSS after it, warm hybrid
  `retrieve()` and `answer()` p50/p95, then the time until 1,000 papers written by another
  process (a second child, same write path) are found by the running one without a restart.
Results go into the "scale" key of results.json, the scale section of results.md and a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bench.measure import FALLBACK_QUESTIONS, QUESTIONS, ROOT, VENV_BIN, bench_env, load_questions, rss_mb, summary
from bench.synth import Base, SynthPaper, base_from_settings, synth_papers
from rag.chunking import chunk_id, embedded_text
from rag.corpus import content_hash
from rag.ingest import _chunk_meta, commit_papers
from rag.lexical_store import lexical_dir, open_lexical
from rag.models import Chunk, Paper
from rag.settings import Settings
from rag.store import Store, open_client

SIZES = (10_000, 100_000, 1_000_000)
N_RESULTS = 100  # Settings.candidate_chunks: what Index.dense asks Chroma for
WRITE_AHEAD = 3  # batches in flight in the loader: its memory is a few batches, whatever the size
PUBLISH_EVERY = 10  # batches between version announcements (open indexes refresh on each)
NEW_PAPERS = 1000  # written by another process while the assistant runs


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


def _tree(pid: int) -> list[int]:
    """A process and its descendants (the server may fork workers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ValueError):
                pass
    return found


def tree_rss_mb(pid: int) -> float:
    return round(sum(rss_mb(p) for p in _tree(pid)), 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree, every thread included."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1) if path.exists() else 0.0


# --- loading --------------------------------------------------------------------------------
Item = tuple[Paper, str, list[Chunk], np.ndarray]  # what rag.ingest.write_papers takes


def items_of(papers: Iterable[SynthPaper]) -> list[Item]:
    """The records the assistant's ingest would write for these papers: one chunk each
    (title line + abstract; the synthetic abstracts fit one chunk's window), its vector."""
    items = []
    for p in papers:
        record = p.record()
        text = embedded_text(p.title, p.abstract)
        items.append((record, content_hash(record), [Chunk(chunk_id(p.paper_id, text), p.paper_id, 0, text)],
                      p.vector[None, :]))
    return items


class Loader:
    """Writes batches of papers with precomputed vectors into a store, pipelined over two
    writer threads with a client each: batch i's lexical documents, log entry and paper
    records (`rag.ingest.commit_papers`) are written while batch i+1's chunks go to the
    server. Per batch the order is `rag.ingest.write_papers`' (chunks, then the commit), so a
    loader killed anywhere leaves what an interrupted `rag ingest` leaves. At most
    `WRITE_AHEAD` batches are in flight: memory stays flat. One per process (the lexical
    index has one writer); `close()` releases it."""

    def __init__(self, settings: Settings, publish_every: int = PUBLISH_EVERY):
        self.chunk_store = Store(open_client(settings), settings.embed_model)
        self.store = Store(open_client(settings), settings.embed_model)
        self.lexical = open_lexical(self.store)
        self.publish_every = publish_every
        self._chunk_writer = ThreadPoolExecutor(1, thread_name_prefix="chunks")
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="commit")
        self._pending: deque[Future] = deque()
        self._batches = 0
        self.written = 0

    def _write_chunks(self, items: list[Item]) -> dict[str, np.ndarray]:
        by_id = {p.paper_id: p for p, _, _, _ in items}
        flat = [c for _, _, cs, _ in items for c in cs]
        vecs = np.concatenate([v for _, _, _, v in items]).astype(np.float32, copy=False)
        self.chunk_store.chunks.add(ids=[c.chunk_id for c in flat], embeddings=vecs,
                                       documents=[c.text for c in flat],
                                       metadatas=[_chunk_meta(c, by_id) for c in flat])
        return dict(zip((c.chunk_id for c in flat), vecs))

    def _commit(self, items: list[Item], chunks_done: Future, publish: bool) -> None:
        vectors = chunks_done.result()  # re-raises the chunk writer's error: nothing committed
        commit_papers(self.store, self.lexical, [(p, d) for p, d, _, _ in items],
                      {p.paper_id: cs for p, _, cs, _ in items}, vectors)
        if publish:
            self.store.publish()

    def add(self, items: list[Item]) -> None:
        self._batches += 1
        done = self._chunk_writer.submit(self._write_chunks, items)
        self._pending.append(self._committer.submit(self._commit, items, done,
                                                    self._batches % self.publish_every == 0))
        self.written += len(items)
        while len(self._pending) > WRITE_AHEAD:
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait for every batch to commit, then announce them and count the source."""
        while self._pending:
            self._pending.popleft().result()
        self.store.publish()

    def close(self) -> None:
        try:
            self.flush()
            self.store.record_sources({"synthetic": self.store.papers.count()})  # as `rag stats` lists sources
        finally:
            self._chunk_writer.shutdown()
            self._committer.shutdown()
            self.lexical.close()


def load(loader: Loader, papers: Iterable[SynthPaper], batch: int,
         on_batch: Callable[[int], None] | None = None) -> int:
    """Stream `papers` through `loader`, `batch` at a time, and commit; returns how many."""
    it, written = iter(papers), 0
    while part := list(islice(it, batch)):
        loader.add(items_of(part))
        written += len(part)
        if on_batch:
            on_batch(written)
    loader.flush()
    return written


def server_ceiling(host: str, port: int, base: Base, server_pid: int | None, n: int = 5000,
                   batch: int = 1000, model: str = "all-MiniLM-L6-v2") -> dict:
    """The server's own insert rate, without the loader's pipelining: the two records of a
    paper written one batch at a time, each kind timed on its own, into a throwaway store of
    this layout: chunk records (vector, document, filter metadata; `Store.chunks.add`) and
    paper records (`Store.put_papers`). Chroma applies writes on one thread, so the papers/s
    ceiling is one over the sum of the two CPU costs."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
    items = items_of(synth_papers(base, n, seed=999))
    store = Store(client, f"{model}-ceiling-{os.getpid()}")
    seconds, cpu = {"chunk": 0.0, "paper": 0.0}, {"chunk": 0.0, "paper": 0.0}

    def timed(kind: str, write: Callable, **args) -> None:
        cpu0, t = cpu_seconds(server_pid) if server_pid else 0.0, time.perf_counter()
        write(**args)
        seconds[kind] += time.perf_counter() - t
        cpu[kind] += (cpu_seconds(server_pid) - cpu0) if server_pid else 0.0

    try:
        for i in range(0, n, batch):
            part = items[i:i + batch]
            by_id = {p.paper_id: p for p, _, _, _ in part}
            chunks = [cs[0] for _, _, cs, _ in part]
            timed("chunk", store.chunks.add, ids=[c.chunk_id for c in chunks],
                  embeddings=np.concatenate([v for _, _, _, v in part]), documents=[c.text for c in chunks],
                  metadatas=[_chunk_meta(c, by_id) for c in chunks])
            timed("paper", store.put_papers, records=[(p, d, 1) for p, d, _, _ in part],
                  vectors={p.paper_id: [v[0]] for p, _, _, v in part})
    finally:
        for name in (store.chunks_name, store.papers_name):
            client.delete_collection(name)
    ms = {kind: 1000 * cpu[kind] / n for kind in cpu} if server_pid else None
    return {"records": n, "batch": batch, "paper_layout": store.paper_layout,
            "chunk_records_per_s": round(n / seconds["chunk"], 1),
            "paper_records_per_s": round(n / seconds["paper"], 1),
            "papers_per_s": round(n / (seconds["chunk"] + seconds["paper"]), 1),
            "server_cpu_ms_per_chunk": round(ms["chunk"], 3) if ms else None,
            "server_cpu_ms_per_paper_record": round(ms["paper"], 3) if ms else None,
            "server_cores_busy": round(sum(cpu.values()) / sum(seconds.values()), 2) if server_pid else None}


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
def _child_main(queue, fn, args) -> None:
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as err:  # handed to the parent, which raises it
        queue.put(("error", f"{type(err).__name__}: {err}"))


def _in_child(fn, *args, timeout: float | None = None):
    """Run `fn(*args)` in a fresh spawned process and return its result (RuntimeError with the
    child's error; TimeoutError, the child killed, after `timeout` seconds). Not a pool
    worker: the child may start children of its own."""
    import queue as queues

    ctx = get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_child_main, args=(results, fn, args))
    child.start()
    try:
        status, value = results.get(timeout=timeout)
    except queues.Empty:
        raise TimeoutError(f"no result after {timeout:.0f} s") from None
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    if status == "error":
        raise RuntimeError(value)
    return value


def query_vectors(questions: list[str], model: str) -> np.ndarray:
    from rag.embedding import Embedder

    return Embedder(model).embed(questions)


def write_new_papers(settings: Settings, base: Base, seed: int, n: int, batch: int) -> dict:
    """Another process's ingest: `n` new papers through the loader's write path."""
    loader = Loader(settings, publish_every=1)
    t = time.perf_counter()
    try:
        load(loader, synth_papers(base, n, seed), batch)
    finally:
        loader.close()
    return {"committed_at": time.time(), "write_seconds": round(time.perf_counter() - t, 2)}


def _probe(paper: SynthPaper) -> str:
    return f"{paper.title}. {paper.abstract}"


def retrieve_stages(index, questions: list[str], params) -> dict:
    """Where a hybrid search's time goes: each step of `Index.search` (with feedback) timed
    on its own, one after another, p50/p95 ms over the questions. In `retrieve()` each pass's
    Chroma query runs beside its BM25 search and both passes' records are one read, so the
    steps add up to more than it takes. Records are read from the store (not the cache), the
    question embedded afresh."""
    from rag.retrieval import _ranked, expanded_query, fuse
    from rag.text import query_terms

    times: dict[str, list[float]] = {}

    def timed(stage: str, fn: Callable, *args):
        t = time.perf_counter()
        value = fn(*args)
        times.setdefault(stage, []).append((time.perf_counter() - t) * 1000)
        return value

    n = params.candidates
    for q in questions:
        vec = timed("embed", index.embedder.embed, [q])[0]
        q_terms = query_terms(q)
        dense = timed("dense (Chroma query)", index.dense, vec, n)
        lexical = timed("bm25 (tantivy + rescoring)", index.lexical, q_terms, n)
        ids = [pid for pid, _ in _ranked(fuse([dense, lexical], params))]
        records = dict(timed("paper records, first pass", index.store.records, ids))
        top = [pid for pid in ids if pid in records][:params.feedback_papers]
        means = timed("feedback vectors (chunk ids + vectors)", index.feedback_vectors, top)
        moved = vec + params.feedback_weight * np.stack([means[pid] for pid in top]).mean(axis=0)
        timed("dense, feedback", index.dense, moved / np.linalg.norm(moved), n)
        extra = timed("expansion terms", index.expansion_terms, top, set(q_terms), params.feedback_terms)
        timed("bm25, feedback", index.lexical, expanded_query(q_terms, extra), n)
    return {stage: summary(values, 1) for stage, values in times.items()}


def app_point(settings: Settings, questions: list[str], base: Base, new_seed: int, batch: int,
              visible_timeout: float = 120.0, new_papers: int = NEW_PAPERS) -> dict:
    """The assistant against the server: open it, warm `retrieve()` and `answer()`, then how
    long until papers another process writes are found, without a restart."""
    from rag.embedding import Embedder
    from rag.pipeline import build_pipeline, search_params

    embedder = Embedder.from_settings(settings)  # as build_pipeline makes it: torch's query threads
    embedder.embed(["warm the model up"])  # the model load is not part of the open
    rss_before = rss_mb()
    t = time.perf_counter()
    pipe = build_pipeline(settings, embedder=embedder)
    pipe.answer(questions[0])
    open_seconds = time.perf_counter() - t
    out = {"open_seconds": round(open_seconds, 2), "rss_before_open_mb": rss_before, "rss_after_open_mb": rss_mb()}
    # Warm: the process has answered a few other questions first. Different questions for
    # retrieve() and answer(), so neither times a question the other already cached.
    for q in FALLBACK_QUESTIONS[:4]:
        pipe.retrieve(q, k=10)
    retrieve_ms, answer_ms, hits = [], [], 0
    for q in questions[1::2]:
        t = time.perf_counter()
        hits += bool(pipe.retrieve(q, k=10))
        retrieve_ms.append((time.perf_counter() - t) * 1000)
    for q in questions[2::2]:
        t = time.perf_counter()
        pipe.answer(q)
        answer_ms.append((time.perf_counter() - t) * 1000)
    out.update(retrieve_ms=summary(retrieve_ms, 1), answer_ms=summary(answer_ms, 1),
               answered_share=round(hits / len(retrieve_ms), 3), rss_after_queries_mb=rss_mb())
    out["retrieve_stages_ms"] = retrieve_stages(pipe.index, questions[1::2], search_params(settings))

    # 1,000 papers from another process; the last one written is the probe.
    last = list(synth_papers(base, new_papers, new_seed))[-1]
    probe, prefix = _probe(last), f"syn{new_seed}-"
    found = lambda: any(s.paper.paper_id == last.paper_id for s in pipe.retrieve(probe, k=10))  # noqa: E731
    out["new_found_before_write"] = found()
    result: dict = {}
    writer = threading.Thread(target=lambda: result.update(_in_child(write_new_papers, settings, base, new_seed,
                                                                      new_papers, batch)))
    writer.start()
    seen_at = None
    deadline = time.time() + visible_timeout + 600
    while time.time() < deadline:
        if found():
            seen_at = time.time()
            if not writer.is_alive():
                break
        elif not writer.is_alive() and time.time() > result.get("committed_at", 0) + visible_timeout:
            break
        time.sleep(0.25)
    writer.join()
    committed = result.get("committed_at")
    out["new_papers"] = {"n": new_papers, "write_seconds": result.get("write_seconds"),
                         "visible_after_seconds": round(max(0.0, seen_at - committed), 2)
                         if seen_at and committed else None,
                         "papers_after": len(pipe.index), "id_prefix": prefix}
    out["peak_rss_mb"] = round(__import__("resource").getrusage(0).ru_maxrss / 1024, 1)
    return out


# --- the run ---------------------------------------------------------------------------------
def run_scale(base: Base, sizes: list[int], seed: int, batch: int, host: str, port: int, server_pid: int | None,
              questions: list[str], qvecs: np.ndarray, app_max: int, work: Path, log=print,
              app_timeout: float = 900.0, on_point: Callable[[dict], None] | None = None,
              new_papers: int = NEW_PAPERS) -> dict:
    """Load and measure each size in turn; `on_point(result so far)` after each size and every
    100 batches while loading (so a run stopped part-way still leaves its figures)."""
    settings = Settings(chroma_host=host, chroma_port=port, data_dir=work)
    ceiling = server_ceiling(host, port, base, server_pid)
    log(f"scale: server's own ceiling {ceiling['papers_per_s']:,.0f} papers/s (CPU-ms per chunk record "
        f"{ceiling['server_cpu_ms_per_chunk']}, per paper record {ceiling['server_cpu_ms_per_paper_record']})")
    stream = synth_papers(base, max(sizes), seed)
    points, trace, loaded = [], [], 0
    server_peak = [0.0]

    for size in sorted(sizes):
        load_avg = [round(x, 2) for x in os.getloadavg()]
        loader = Loader(settings)

        def sample(written: int, before: int = loaded, t0: float = time.perf_counter(), size: int = size,
                   load_avg: list = load_avg) -> None:
            if (before + written) % (batch * 10) == 0:
                trace.append((before + written, rss_mb()))
                if server_pid:
                    server_peak[0] = max(server_peak[0], tree_rss_mb(server_pid))
            if on_point and written % (batch * 100) == 0:
                rate = round(written / (time.perf_counter() - t0), 1)
                on_point({"points": points, "server_ceiling": ceiling, "loader_rss_trace": _trace_text(trace),
                          "loading": {"papers": before + written, "target": size, "load_rate": rate,
                                      "load_average_at_start": load_avg}})

        cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
        t = time.perf_counter()
        try:
            added = load(loader, islice(stream, size - loaded), batch, sample)
        finally:
            loader.close()
        seconds = time.perf_counter() - t
        server_cpu = (cpu_seconds(server_pid) - cpu0) if server_pid else 0.0
        if server_pid:
            server_peak[0] = max(server_peak[0], tree_rss_mb(server_pid))
        loaded += added
        store = loader.store
        papers, chunks = store.counts()
        assert papers == chunks == loaded, (papers, chunks, loaded)
        query_ms, fewest = dense_latency_ms(store, qvecs)
        point = {"papers": loaded, "load_average_at_start": load_avg, "load_seconds": round(seconds, 2),
                 "load_rate": round(added / seconds, 1), "loader_rss_mb": rss_mb(),
                 "server_rss_mb": tree_rss_mb(server_pid) if server_pid else 0.0,
                 "server_peak_rss_mb": server_peak[0], "server_cores_busy": round(server_cpu / seconds, 2),
                 "query_ms": query_ms, "fewest_hits": fewest,
                 "lexical_mb": dir_mb(lexical_dir(store)), "lexical_docs": loader.lexical.num_docs}
        log(f"scale: {loaded:,} papers loaded at {point['load_rate']:,.0f}/s (load avg {load_avg[0]}); "
            f"Chroma query p50 {query_ms['p50']} ms; lexical index {point['lexical_mb']} MiB")
        if loaded <= app_max:
            try:
                point["app"] = _in_child(app_point, settings, questions, base, 10_000 + seed * 100 + len(points),
                                         batch, 120.0, new_papers, timeout=app_timeout)
                loaded += new_papers  # the other process's papers are in the index now
                app = point["app"]
                log(f"scale: assistant open {app['open_seconds']} s ({app['rss_after_open_mb']:.0f} MiB), "
                    f"retrieve p50/p95 {app['retrieve_ms']['p50']}/{app['retrieve_ms']['p95']} ms, answer p50/p95 "
                    f"{app['answer_ms']['p50']}/{app['answer_ms']['p95']} ms, {new_papers} new papers visible "
                    f"after {app['new_papers']['visible_after_seconds']} s")
            except Exception as err:  # a finding, not a crash of the benchmark: record it
                point["app"] = {"error": f"{type(err).__name__}: {err}"[:300]}
                log(f"scale: the assistant failed at {loaded:,} papers: {point['app']['error']}")
                papers, _ = store.counts()
                loaded = papers  # whatever the other process committed before it stopped
        points.append(point)
        if on_point:
            on_point({"points": points, "server_ceiling": ceiling, "loader_rss_trace": _trace_text(trace)})
    return {"points": points, "server_ceiling": ceiling, "loader_rss_trace": _trace_text(trace)}


def _trace_text(trace: list[tuple[int, float]], keep: int = 8) -> str:
    if not trace:
        return "-"
    step = max(1, len(trace) // keep)
    picked = trace[::step] + ([trace[-1]] if (len(trace) - 1) % step else [])
    return ", ".join(f"{n:,} papers: {mb:.0f} MiB" for n, mb in picked)


def chart(points: list[dict], path: Path, ceiling: dict | None = None, loading: dict | None = None) -> None:
    """Latency against size (left); load rate, the server's ceiling and the open time (right).
    `loading`: a size stopped part-way (its rate so far is drawn hollow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["papers"] for p in points]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    ax.plot(x, [p["query_ms"]["p50"] for p in points], "o-", label="Chroma dense query p50 (top-100)")
    apps = [p for p in points if "retrieve_ms" in p.get("app", {})]
    if apps:
        ax.plot([p["papers"] for p in apps], [p["app"]["retrieve_ms"]["p50"] for p in apps], "^-",
                label="assistant retrieve() p50 (hybrid)")
        ax.plot([p["papers"] for p in apps], [p["app"]["retrieve_ms"]["p95"] for p in apps], "^--",
                label="assistant retrieve() p95")
        ax.plot([p["papers"] for p in apps], [p["app"]["answer_ms"]["p50"] for p in apps], "s-",
                label="assistant answer() p50")
    for p in points:
        if "error" in p.get("app", {}):
            ax.annotate("assistant failed here", (p["papers"], p["query_ms"]["p50"]), textcoords="offset points",
                        xytext=(-60, 25), fontsize=8, color="firebrick",
                        arrowprops={"arrowstyle": "->", "color": "firebrick"})
    ax.set_ylabel("latency, ms")
    ax.set_title("Query latency against corpus size")
    ax2.plot(x, [p["load_rate"] for p in points], "o-", color="tab:green", label="load rate, papers/s")
    if loading:
        ax2.plot([loading["papers"]], [loading["load_rate"]], "o", mfc="none", color="tab:green",
                 label=f"load rate so far, stopped at {loading['papers']:,}")
    if ceiling:
        ax2.axhline(ceiling["papers_per_s"], ls=":", color="gray", label="server's own ceiling (unpipelined writes)")
    ax2.set_ylabel("papers/s")
    ax2.set_title("Load rate and index open")
    if apps:
        ax3 = ax2.twinx()
        ax3.plot([p["papers"] for p in apps], [p["app"]["open_seconds"] for p in apps], "^-", color="tab:purple",
                 label="open (first answer), s")
        ax3.set_ylabel("seconds")
        ax3.legend(fontsize=8, loc="lower right")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("papers in the index (synthetic)")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8, loc="upper left")
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
    parser.add_argument("--app-max", type=int, default=1_000_000, help="run the assistant itself up to this size")
    parser.add_argument("--app-timeout", type=float, default=900.0, help="seconds the assistant's child may take")
    parser.add_argument("--data-dir", type=Path, help="index of the real corpus to recombine (default: RAG_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--work", type=Path, help="where the server's data and the lexical cache go "
                        "(default: a temp dir); removed at the end unless --keep")
    parser.add_argument("--keep", action="store_true", help="keep --work afterwards")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes or [s for s in SIZES if s <= args.max])

    # Read the real index from a copy: the user's store is never opened for writing.
    real = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.work))
    shutil.copytree(real.data_dir, work / "base", dirs_exist_ok=True)
    base = base_from_settings(Settings(data_dir=work / "base"))
    questions = load_questions(QUESTIONS)
    qvecs = _in_child(query_vectors, questions, real.embed_model)

    port = free_port()
    proc = start_server(work / "server", port, work / "chroma.log")
    started = machine()
    args.out.mkdir(parents=True, exist_ok=True)  # before the first point: a late failure loses the run
    results_path = args.out / "results.json"
    chart_path = args.out / "scale.png"

    def record(result: dict) -> None:
        """Write the "scale" key of results.json now (the other keys are kept)."""
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results["scale"] = {"date": started["date"], "machine_load_at_start": started["load_average_at_start"],
                            "seed": args.seed, "batch": args.batch, "n_results": N_RESULTS,
                            "queries": len(questions), "write_ahead": WRITE_AHEAD, "chart": chart_path.name,
                            "server_data_mb": dir_mb(work / "server"), **result}
        results.setdefault("machine", started)
        tmp = results_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        os.replace(tmp, results_path)
        if result["points"]:
            chart(result["points"], chart_path, result.get("server_ceiling"), result.get("loading"))

    try:
        result = run_scale(base, sizes, args.seed, args.batch, "127.0.0.1", port, proc.pid, questions, qvecs,
                           args.app_max, work / "app", log=lambda m: print(m, file=sys.stderr, flush=True),
                           app_timeout=args.app_timeout, on_point=record)
        record(result)
    finally:
        stop_server(proc)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    try:
        write_results(json.loads(results_path.read_text()), args.out)
    except Exception as err:  # results.json holds the figures; `python -m bench.report` renders them again
        print(f"scale: results.md not rendered ({type(err).__name__}: {err})", file=sys.stderr)
        return 1
    print(f"scale: wrote {args.out / 'results.md'} and {chart_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
