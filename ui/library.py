"""The chat UI's "Your papers" panel: upload files into the index, see the sources with their
paper counts, remove one. Thin: `rag.sources` checks, stores and ingests; this module lays
out the panel and turns its results into HTML.

The panel is writable only where the UI is not reachable by strangers (bound to loopback, or
behind the login): elsewhere it lists the sources read-only and `ui.guard` keeps refusing
uploads. Uploads arrive in Gradio's temporary directory; `rag.sources.add_file` copies each
into `data_dir/uploads/` and the temporary copy is deleted, so nothing uploaded stays where
Gradio serves files from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from rag import sources
from rag.errors import RagError
from rag.settings import Settings
from ui.render import corpus, esc

log = logging.getLogger(__name__)


def summary_html(name: str, report) -> str:
    """What an upload did, as the CLI prints it (`IngestReport.summary`)."""
    return (f'<div class="upload-done"><div class="upload-head">Added <bdi>{esc(name)}</bdi>: '
            f"{report.new} new, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.skipped_records} skipped</div><pre class=\"ingest-summary\">{esc(report.summary())}</pre></div>")


def notice_html(message: str) -> str:
    return f'<div class="upload-done">{esc(message)}</div>'


def refused_html(message: str) -> str:
    return f'<div class="upload-refused"><strong>Refused:</strong> {esc(message)}</div>'


def sources_html(counts: dict[str, int]) -> str:
    """The sources list's heading line."""
    total = sum(counts.values())
    return (f'<div class="library-head">{len(counts)} source(s), {total:,} papers</div>' if counts
            else '<div class="library-head">No sources yet.</div>')


def upload_handler(settings: Settings, pipeline, after: Callable[[], tuple]):
    """The upload event: each file checked and ingested in turn; returns (summary HTML,
    cleared file input, then `after()`: what else the page refreshes)."""

    def upload(files, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 (Gradio's own idiom)
        files = [f for f in (files or []) if f]
        parts = []
        for i, f in enumerate(files, start=1):
            path = Path(f if isinstance(f, str) else getattr(f, "name", ""))
            name = path.name
            progress((i - 1) / max(1, len(files)), desc=f"reading {name}")
            try:
                report = sources.add_file(settings, path, name, embedder=pipeline.index.embedder, progress=True)
                pipeline.index.refresh()  # answerable from the next question on, in every session
                parts.append(summary_html(name, report))
            except RagError as err:
                parts.append(refused_html(str(err)))
            except Exception as err:  # a bug: the page says so in one line, the log has the traceback
                log.exception("upload of %s failed", name)
                parts.append(refused_html(f"{name}: internal error ({type(err).__name__}); see the server log"))
            finally:
                path.unlink(missing_ok=True)  # Gradio's temporary copy: nothing stays in its cache
        return ("".join(parts) or "", None, *after())

    return upload


def source_rows(counts: dict[str, int], writable: bool, on_remove: Callable[[str], tuple], outputs: list) -> None:
    """One row per source (name, papers, and a Remove button when writable); call inside
    `gr.render`."""
    gr.HTML(sources_html(counts), padding=False)
    for name, n in sorted(counts.items()):
        with gr.Row(elem_classes="source-row", equal_height=True):
            gr.HTML(f'<span class="source-name">{corpus(name)}</span> <span class="source-count">{n:,} papers</span>',
                    elem_classes="source-label", padding=False)
            if writable:
                btn = gr.Button("Remove", size="sm", variant="stop", min_width=70, scale=0,
                                elem_classes="remove-source")
                btn.click(lambda name=name: on_remove(name), None, outputs, api_visibility="private")
