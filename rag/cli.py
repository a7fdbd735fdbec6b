"""`rag` command line: parse arguments, build Settings, call the core, print.

Heavy libraries (torch, chromadb, gradio) are imported inside the commands that need them, so
`rag --help` starts instantly. Errors a user can fix are printed as one line on stderr with a
non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rag.errors import ConfigError, RagError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _settings(**overrides):
    """Settings from the environment with the command's options (by field name) on top; a
    bad value is a ConfigError naming the option or RAG_* variable as the user typed it."""
    from pydantic import ValidationError

    from rag.embedding import model_path
    from rag.settings import Settings, explain

    given = {k: v for k, v in overrides.items() if v is not None}
    options = {"retrieval_mode": "--mode", "ui_host": "--host", "ui_port": "--port"}
    try:
        settings = Settings(**given)
    except ValidationError as err:
        written = {k: options.get(k, "--" + k.replace("_", "-")) for k in given}
        raise ConfigError(explain(err, written)) from None
    try:
        # Fail here, in one line, rather than deep in torch (this also assembles a model shipped in parts).
        model_path(settings.embed_model, settings.model_cache_dir, settings.embed_allow_download)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return settings


def cmd_ingest(args) -> int:
    s = _settings()
    paths = [Path(p) for p in args.paths] or s.corpus_paths
    for p in paths:
        if not p.exists():
            raise ConfigError(f"no such file or directory: {p}")
    if args.batch_papers is not None and args.batch_papers < 1:
        raise ConfigError(f"--batch-papers must be at least 1, not {args.batch_papers}")
    from rag.assistant import Assistant
    from rag.ingest import BATCH_PAPERS  # llama-index and numpy: after the cheap checks
    from rag.store import check_writable, open_client
    from rag.store_health import store_error
    from rag.writer_lock import writer_lock

    batch = args.batch_papers or BATCH_PAPERS
    check_writable(s)  # read-only or full: say so before anything is touched
    try:
        if args.rebuild or args.rebuild_lexical:
            client = open_client(s) if s.uses_server else None  # the server holds the lock
            with writer_lock(s, client):
                papers, chunks = _rebuild(args, s, paths, batch)
        else:
            with Assistant(s) as assistant:
                print(assistant.ingest(paths, progress=not args.quiet, batch_papers=batch).summary())
                stats = assistant.stats()
            papers, chunks = stats.papers, stats.chunks
    except Exception as err:
        if not _store_failure(err):
            raise
        raise store_error(err, _where(s), None if s.uses_server else s.data_dir / "chroma") from None
    print(f"index: {papers} papers, {chunks} chunks at {_where(s)}")
    return 0


def _store_failure(err: Exception) -> bool:
    """A failure of the store (Chroma, SQLite, a full disk), as opposed to a bug or an input file."""
    import errno
    import sqlite3

    from chromadb.errors import ChromaError

    if isinstance(err, RagError):
        return False
    return (isinstance(err, (ChromaError, sqlite3.Error)) or type(err).__module__.startswith("chromadb")
            or (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "no space left" in str(err).lower())


def _rebuild(args, s, paths, batch: int) -> tuple[int, int]:
    """`--rebuild` or `--rebuild-lexical` under the writer lock; prints the report, returns (papers, chunks)."""
    from rag.ingest import ingest
    from rag.rebuild import live_store, plan_rebuild, rebuilding
    from rag.store import Store, open_client

    if args.rebuild_lexical:
        from rag.ingest import rebuild_lexical

        store = Store(open_client(s), s.embed_model, create=False)
        print(f"lexical index rebuilt from the vector store: {rebuild_lexical(store, progress=not args.quiet)} papers")
        return store.counts()
    from rag.source_paths import forget_paths

    live = live_store(s, s.embed_model)
    plan = plan_rebuild(s, [Path(p) for p in args.paths], live, drop_missing=args.drop_missing)
    if plan.kept:
        print(f"re-reading the {len(plan.kept)} source(s) {plan.recorded_by} records: "
              + ", ".join(sorted(plan.kept)), file=sys.stderr)
    with rebuilding(s, s.embed_model) as store:
        report = ingest(plan.paths, s, store, progress=not args.quiet, batch_papers=batch, reuse=live)
    forget_paths(s, plan.dropped)
    print(f"rebuilt beside the live index at {_where(s)}, switched to it and dropped the index it replaced"
          + (f"; without the papers of {', '.join(plan.dropped)} (--drop-missing)" if plan.dropped else ""),
          file=sys.stderr)
    print(report.summary())
    return Store(open_client(s), s.embed_model, create=False).counts()


def _where(s) -> str:
    from rag.store import store_location

    return store_location(s)


def cmd_stats(args) -> int:
    from rag.assistant import Assistant
    from rag.embedding import TokenCounter
    from rag.errors import StoreError
    from rag.store import get_all
    from rag.store_health import store_error

    s = _settings()
    assistant = Assistant(s)  # reads the store only: no embedder is loaded
    try:
        info = assistant.stats().to_dict()
    except StoreError:
        raise
    except Exception as err:  # Chroma failing mid-read: name the cause (disk full, damaged, ...)
        raise store_error(err, _where(s), None if s.uses_server else s.data_dir / "chroma") from None
    if args.tokens:
        from rag.store import Store, open_client

        counter = TokenCounter(s.embed_model, s.model_cache_dir)
        chunks = Store(open_client(s, create=False), s.embed_model, create=False).chunks
        sizes = [counter.count(d) + 2 for d in get_all(chunks, ["documents"])["documents"]]
        info["largest_chunk_tokens"] = max(sizes, default=0)
        info["chunks_over_window"] = sum(n > counter.window for n in sizes)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "sources":
            print("sources:")
            for name, n in sorted(value.items()):
                print(f"  {name}: {n} papers")
        else:
            print(f"{key}: {value}")
    return 0


def _filters(args):
    """The `--year/--source/--author/--category` options as `Filters`, None when none is given."""
    from rag.models import Filters

    try:
        year = Filters.parse_year(args.year) if args.year else None
    except ValueError as err:
        raise ConfigError(f"--year: {err}") from None
    limits = Filters(year=year, source=args.source or None, author=args.author or None,
                     category=args.category or None)
    return None if limits.empty else limits


def cmd_ask(args) -> int:
    from rag.assistant import Assistant
    from rag.models import Answer
    from rag.questions import check_question
    from rag.render import references

    options = {"answerer": args.answerer, "max_papers": args.max_papers, "retrieval_mode": args.mode}
    s = _settings(**options)
    check_question(args.question, s.max_question_chars)  # refuse before opening the index
    limits = _filters(args)
    quiet = args.json or args.bib or args.markdown  # a document on stdout: no preview
    final, preview = None, []
    with Assistant(s) as assistant:
        for event in assistant.stream(args.question, filters=limits):
            if isinstance(event, Answer):
                final = event
            elif args.stream and not quiet:
                preview.append(event)
                print(event, end="", flush=True)
    assert final is not None
    if args.json:
        print(json.dumps(final.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if args.bib:
        from rag.export import to_bibtex

        print(to_bibtex(final), end="")
        if not final.citations:
            print("rag: no papers cited, so no BibTeX entries", file=sys.stderr)
        return 0
    if args.markdown:
        from rag.render import to_markdown

        print(to_markdown(final, document=True), end="")
        return 0
    if not args.stream:
        print(final.text)
    elif "".join(preview) != final.text:
        # The preview was the model's raw text; show what validation kept.
        print("\n\n--- validated answer ---\n" + final.text)
    else:
        print()
    for note in final.notes:
        print(f"note: {note}")
    if final.unsupported:
        print(f"removed: {len(final.unsupported)} sentence(s) that no cited abstract supports")
    if final.citations:
        print("\nReferences:\n" + references(final))
    return 0


def cmd_ui(args) -> int:
    from ui.app import launch

    launch(_settings(ui_host=args.host, ui_port=args.port), mcp=args.mcp)
    return 0


def cmd_remove(args) -> int:
    from rag.assistant import Assistant

    removed = Assistant(_settings()).remove(args.source)  # under the writer lock
    print(f"removed {args.source}: {removed} papers")
    return 0


def cmd_eval(args) -> int:
    from eval.runner import run

    return run(args, _settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Grounded, cited answers from a collection of paper abstracts.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index paper files (no path: the bundled corpus)")
    p.add_argument("paths", nargs="*",
                   help=".txt (Daily Papers), .jsonl/.json, .csv, .bib, .ris files (or their .gz) or directories")
    p.add_argument("--rebuild", action="store_true",
                   help="build a new index beside the live one from the files given and every source it "
                   "records (uploads included), then swap it in (e.g. after damage)")
    p.add_argument("--drop-missing", action="store_true",
                   help="with --rebuild: leave out recorded sources whose file is gone (else the rebuild refuses)")
    p.add_argument("--rebuild-lexical", action="store_true",
                   help="rebuild only the lexical (BM25) index from the vector store's chunks; no files are read")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--batch-papers", type=int, metavar="N",
                   help="papers embedded and committed per round (default 256); smaller loses less to an interruption")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", help="what the index holds")
    p.add_argument("--tokens", action="store_true", help="also count word pieces of every chunk")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("ask", help="answer a question with numbered references")
    p.add_argument("question")
    p.add_argument("--answerer", choices=["extractive", "llm"])
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="retrieval mode")
    p.add_argument("--max-papers", type=int)
    p.add_argument("--stream", action="store_true", help="print text as it is generated")
    p.add_argument("--json", action="store_true", help="the whole Answer as JSON")
    p.add_argument("--bib", action="store_true", help="print the cited papers as BibTeX instead")
    p.add_argument("--markdown", action="store_true", help="print the answer as Markdown with numbered references")
    p.add_argument("--year", metavar="RANGE", help="only papers of these years: 2021, 2020-2024, 2020- or -2019")
    p.add_argument("--source", metavar="FILE", help="only papers from this source (a name `rag stats` lists)")
    p.add_argument("--author", metavar="NAME", help="only papers with an author of this name")
    p.add_argument("--category", metavar="CAT", help="only papers of this arXiv category, e.g. cs.CV")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("remove", help="remove every paper of one source (a file name `rag stats` lists)")
    p.add_argument("source")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("ui", help="start the chat UI and print its URL")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--mcp", action="store_true",
                   help="also serve the MCP tools answer, retrieve and stats at /gradio_api/mcp/ (streamable HTTP)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("eval", help="score the assistant on eval/questions.jsonl")
    try:
        from eval.cli_args import add_arguments
    except ImportError:  # eval package not installed (non-editable install without it)
        add_arguments = None
    if add_arguments:
        add_arguments(p)
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pydantic import ValidationError

    try:
        return args.func(args)
    except RagError as err:
        print(f"rag: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except ValidationError as err:  # an override given deeper in, e.g. `rag eval --config x:max_papers=abc`
        from rag.settings import explain

        print(f"rag: error: {_one_line(explain(err))}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or directory the user named: missing, unreadable, full disk
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"rag: error: {_one_line(err.strerror or str(err))}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
