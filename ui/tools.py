"""The MCP tools of `rag ui --mcp`: `answer`, `retrieve` and `stats` over the running
pipeline, so an agent (Claude Desktop, Cursor, any MCP client) can ask the collection.

Gradio turns each function registered with `gr.api` into an MCP tool (`launch(mcp_server=True)`):
the name is the function's, the parameters and their types come from the signature, the
descriptions from the docstring's "Args:" lines. Each tool returns one JSON text (Gradio
sends a tool's result as text), so a client reads the answer, its citations (paper id,
title, quote) and `abstained` as data. A wrong parameter is refused with its reason.

Filters: `year_from`/`year_to` (0: open), `source` (a file name as `stats` lists it),
`author`, `category` (arXiv, e.g. "cs.CV"); all empty means no filter.
"""

from __future__ import annotations

import json

import gradio as gr

from rag.errors import QuestionError, RagError
from rag.models import Filters, Paper
from rag.settings import Settings
from ui import params


def _filters(year_from: int, year_to: int, source: str, author: str, category: str) -> Filters | None:
    for name, value in (("year_from", year_from), ("year_to", year_to)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9999:
            raise QuestionError(f"{name} must be a year (0 for no limit), got {value!r:.40}")
    year = f"{year_from or ''}-{year_to or ''}" if year_from or year_to else None
    return params.filters(year, source or None, author or None, category or None)


def _paper(paper: Paper) -> dict:
    return {"paper_id": paper.paper_id, "title": paper.title, "authors": paper.authors, "year": paper.year,
            "venue": paper.venue, "url": paper.url, "source": paper.source}


# The filter parameters' "Args:" lines, shared by the tools' docstrings (Gradio reads them from there).
FILTER_ARGS = """year_from: Only papers published in this year or later; 0 for no lower limit.
            year_to: Only papers published in this year or earlier; 0 for no upper limit.
            source: Only papers from this source file (a name that the stats tool lists); empty for all.
            author: Only papers with an author of this name; empty for all.
            category: Only papers of this arXiv category (e.g. "cs.CV"); empty for all."""


def register(settings: Settings, pipeline) -> None:
    """Register the tools on the Blocks being built (call inside `with gr.Blocks()`)."""

    def _call(fn):
        try:
            return json.dumps(fn(), ensure_ascii=False)
        except RagError as err:
            raise gr.Error(str(err), print_exception=False) from None

    def answer(question: str, max_papers: int = 0, year_from: int = 0, year_to: int = 0, source: str = "",
               author: str = "", category: str = "") -> str:
        """Answer a question from the indexed research-paper abstracts, citing the papers used. When the
        papers do not cover the question the answer abstains (abstained: true) rather than guess.

        Args:
            question: The question, in plain words (e.g. "Which papers bridge CNNs and ViTs?").
            max_papers: At most this many papers cited; 0 keeps the server's setting.
            {filters}

        Returns:
            JSON text (the Answer's to_dict): {"text", "abstained", "notes", "citations": [{"n", "paper_id",
            "title", "quote"}], "sources": [{"paper_id", "title", "authors", "year", "url", ...}]}; the text's
            markers [n] refer to the citations.
        """
        def run():
            limits = _filters(year_from, year_to, source, author, category)
            result = pipeline.answer(params.question_text(question),
                                     settings=params.call_settings(settings, None, max_papers), filters=limits)
            return result.to_dict()

        return _call(run)

    def retrieve(question: str, k: int = 10, year_from: int = 0, year_to: int = 0, source: str = "",
                 author: str = "", category: str = "") -> str:
        """The papers that best match a question, best first, with their abstracts and scores (no answer).

        Args:
            question: What to search for, in plain words.
            k: How many papers to return (1 to 50).
            {filters}

        Returns:
            JSON text: a list of {"paper_id", "title", "abstract", "authors", "year", "url", "source", "score"}.
        """
        def run():
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
                raise QuestionError(f"k must be a whole number from 1 to 50, got {k!r:.40}")
            limits = _filters(year_from, year_to, source, author, category)
            found = pipeline.retrieve(params.question_text(question), k=k, filters=limits)
            return [{**_paper(s.paper), "abstract": s.paper.abstract, "score": round(s.score, 4)} for s in found]

        return _call(run)

    def stats() -> str:
        """What the collection holds: the number of papers and chunks, the embedding model, and each
        source file with its number of papers (the names the source filter takes).

        Returns:
            JSON text: {"papers", "chunks", "embedding_model", "sources": {name: papers}}.
        """
        from rag.sources import list_sources

        def run():
            pipeline.index.refresh()
            return {"papers": len(pipeline.index), "chunks": pipeline.index.chunk_count,
                    "embedding_model": settings.embed_model, "sources": list_sources(settings)}

        return _call(run)

    for fn in (answer, retrieve):
        fn.__doc__ = fn.__doc__.replace("{filters}", FILTER_ARGS)
    for fn in (answer, retrieve, stats):
        gr.api(fn, api_name=fn.__name__, queue=False)
