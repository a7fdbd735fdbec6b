"""The Gradio chat UI: parse input, call the pipeline, render. No retrieval or answer logic.

`build_app(settings, pipeline=None)` lays out the page and wires its events; `serve(settings)`
serves it on `settings.ui_host:settings.ui_port` and prints the URL once the embedding model
is loaded, so the URL means "ready"; `launch` (what `rag ui` runs) serves until interrupted.
Each browser session keeps its own conversation in a `gr.State`, with each answer's
citations as data (`Answer.as_message`), so follow-ups resolve from paper ids; the pipeline
is shared and only read. Besides the page, the app exposes one named API endpoint, `/ask`,
for headless use with `gradio_client` (docs/operations.md, "Headless API"), and with `mcp=True`
the MCP tools of `ui.tools` (`rag ui --mcp`). The "Your papers" panel (`ui.library`) adds
and removes files where the UI is not exposed to strangers. In front of Gradio, `ui.guard`
caps request bodies, allows uploads only then (size-limited) and throttles failed logins.

What this module does not do: decide anything about answers. Follow-up detection, cut-offs,
abstention and citation checking all happen in `rag.pipeline`; `ui.render` lays out the result.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402
from fastapi.middleware import Middleware  # noqa: E402

from rag import ingest_status  # noqa: E402
from rag import sources as library_sources  # noqa: E402
from rag.errors import ConfigError, RagError  # noqa: E402
from rag.export import to_bibtex  # noqa: E402
from rag.models import Answer  # noqa: E402
from rag.render import to_markdown  # noqa: E402
from rag.settings import Settings  # noqa: E402
from ui import library, params, render, tools  # noqa: E402
from ui.guard import Guard, LoginThrottle  # noqa: E402

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).with_name("static.css")
EXAMPLES = [
    "Which papers bridge CNNs and ViTs?",
    "Which papers study self-supervised representation learning?",
    "What accuracy does CvT reach on ImageNet?",
    "How does MambaOut compare Mamba with CNNs?",
]
CONCURRENCY = 4  # answers computed at once; more only queue up on 2-4 cores
# Page script: a marker click opens its card (a closed <details>) and scrolls to it (without
# the script the link still jumps to the card, which opens on click); a new turn is scrolled
# to its question, so a long answer is read from the top rather than from its last card.
PAGE_JS = """() => {
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest ? ev.target.closest('a.cite-marker') : null;
    if (!a) return;
    const card = document.getElementById((a.getAttribute('href') || '').slice(1));
    if (!card) return;
    ev.preventDefault();
    card.open = true;
    card.scrollIntoView({behavior: 'smooth', block: 'center'});
    card.classList.remove('flash'); void card.offsetWidth; card.classList.add('flash');
  });
  const seen = new WeakSet();
  new MutationObserver(() => {
    const bots = document.querySelectorAll('#chat [data-testid="bot"]');
    const last = bots[bots.length - 1];
    if (!last || seen.has(last)) return;
    seen.add(last);
    const box = last.closest('[role="log"]');
    const users = document.querySelectorAll('#chat [data-testid="user"]');
    const target = users.length ? users[users.length - 1] : last;
    if (box) box.scrollTo({top: target.getBoundingClientRect().top - box.getBoundingClientRect().top
                                + box.scrollTop - 12, behavior: 'smooth'});
  }).observe(document.body, {subtree: true, childList: true});
}"""


@dataclass
class Session:
    """One browser session's conversation. `history` is what the pipeline reads back
    (questions, and answers as `Answer.as_message()`: their citations' paper ids resolve
    follow-ups); `shown` is the rendered chat."""

    history: list[dict] = field(default_factory=list)
    shown: list[dict] = field(default_factory=list)

    @property
    def turn(self) -> int:
        return sum(m["role"] == "assistant" for m in self.history) + 1


def _error_text(err: Exception) -> str:
    if isinstance(err, RagError):
        return str(err)
    log.exception("answering failed")  # the traceback goes to the server log, not the page
    return f"the assistant hit an internal error ({type(err).__name__}); the details are in the server log"


# The download buttons' files: one directory per answer, the oldest removed beyond this many,
# so a long-running UI does not fill /tmp (Gradio copies each file into its own cache, which
# `delete_cache` on the Blocks bounds in turn).
EXPORTS_KEPT = 64
_exports_lock = threading.Lock()


def export_files(answer: Answer, papers, root: Path | None = None) -> tuple[str, str | None]:
    """(Markdown path, BibTeX path or None without citations) of an answer, written to a
    fresh directory under `root` (a per-process temporary directory) for the download buttons."""
    root = root or Path(tempfile.gettempdir()) / f"paper-qa-export-{os.getpid()}"
    with _exports_lock:
        root.mkdir(mode=0o700, exist_ok=True)
        old = sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)
        for stale in old[:max(0, len(old) - EXPORTS_KEPT + 1)]:
            shutil.rmtree(stale, ignore_errors=True)
        where = Path(tempfile.mkdtemp(dir=root))
    md = where / "answer.md"
    md.write_text(to_markdown(answer, papers, document=True), encoding="utf-8")
    if not answer.citations:
        return str(md), None
    bib = where / "cited-papers.bib"
    bib.write_text(to_bibtex(answer, papers), encoding="utf-8")
    return str(md), str(bib)


class _Blocks(gr.Blocks):
    """gr.Blocks whose endpoints refuse a call with too few inputs with a reason. Gradio raises a
    ValueError there, which it hides from the client (show_error=False: a bug's message is no
    one's business), so a raw HTTP call of `/ask` without all its inputs got `{"error": null}`."""

    def validate_inputs(self, block_fn, inputs: list) -> None:
        if len(inputs) < len(block_fn.inputs):
            fn = getattr(block_fn, "fn", None)
            names = list(inspect.signature(fn).parameters) if fn else []
            needed = ", ".join(names) if len(names) == len(block_fn.inputs) else f"{len(block_fn.inputs)} values"
            raise gr.Error(f"the {block_fn.name or 'endpoint'} endpoint takes {len(block_fn.inputs)} inputs, "
                           f"got {len(inputs)}: send them all, in order ({needed}); gradio_client fills in "
                           "the defaults", print_exception=False)
        super().validate_inputs(block_fn, inputs)


def build_app(settings: Settings, pipeline=None, mcp: bool = False) -> gr.Blocks:
    """The chat page over `pipeline` (opened from `settings` when None); `mcp` adds the MCP
    tools (`ui.tools`). Serve it with `app.launch(**launch_options(settings, mcp=mcp))`, as
    `launch` does."""
    if pipeline is None:
        from rag import default_assistant

        pipeline = default_assistant(settings).pipeline
    writable = exposure_warning(settings) is None  # strangers may not change the index

    def respond(question: str, session: Session, answerer: str, max_papers: float, follow_mode: str,
                year: str, source: str, author: str, category: str) -> Iterator[tuple]:
        """Stream one answer into the chat: (chat, question box, session, sources panel,
        Markdown download, BibTeX download)."""
        question = question if isinstance(question, str) else ""
        shown = list(session.shown)
        if question.strip():
            shown.append({"role": "user", "content": render.question_html(question)})
        shown.append({"role": "assistant", "content": render.streaming_html("Searching the papers…")})
        hidden = gr.update(visible=False, value=None)
        yield shown, "", session, gr.update(), hidden, hidden
        text, final = "", None
        try:
            s = params.call_settings(settings, answerer, max_papers)
            limits = params.filters(year, source, author, category)
            # Citations of papers removed since (the "Your papers" panel, `rag remove`) are dropped.
            earlier = params.history_messages(session.history, pipeline.index.papers)
            for event in pipeline.stream(question, earlier, settings=s,
                                         follow_up=params.follow_up_mode(follow_mode), filters=limits):
                if isinstance(event, Answer):
                    final = event
                else:
                    text += event
                    shown[-1] = {"role": "assistant", "content": render.streaming_html(text)}
                    yield shown, "", session, gr.update(), gr.update(), gr.update()
        except Exception as err:  # shown in the chat; a bug's traceback only in the log
            shown[-1] = {"role": "assistant", "content": render.error_html(_error_text(err))}
            yield shown, "", Session(session.history, shown), gr.update(), hidden, hidden
            return
        assert final is not None  # the pipeline's stream always ends with the Answer
        papers = pipeline.index.papers
        shown[-1] = {"role": "assistant", "content": render.answer_html(final, session.turn, papers)}
        history = session.history + [{"role": "user", "content": " ".join(question.split())},
                                     final.as_message()]
        md, bib = export_files(final, papers)
        yield (shown, "", Session(history, shown), render.sources_panel(final),
               gr.update(value=md, visible=True), gr.update(value=bib, visible=bib is not None))

    def ask(question: str, history: list[dict] | None = None, follow_up: str = "auto",
            max_papers: int = 0, year: str = "", source: str = "", author: str = "", category: str = "") -> dict:
        """Answer `question` (with earlier turns as [{"role", "content"}] messages; an
        assistant turn may carry "citations", as the returned "message" does) and return
        `Answer.to_dict()` plus "markdown" and "message". `follow_up`: "auto", "on" or
        "off"; `max_papers`: 0 keeps the server's setting; `year` ("2020-2024"), `source`,
        `author`, `category`: filters, empty for none. A wrong parameter is refused with
        its reason."""
        try:
            answer = pipeline.answer(params.question_text(question),
                                     params.history_messages(history, pipeline.index.papers),
                                     settings=params.call_settings(settings, None, max_papers),
                                     follow_up=params.follow_up_mode(follow_up),
                                     filters=params.filters(year, source, author, category))
        except Exception as err:
            # The message is the whole story for the client; a bug's traceback is already logged.
            raise gr.Error(_error_text(err), print_exception=False) from None
        # The one JSON form of an answer, plus its chat turn as Markdown (corpus text inert, bare URLs too).
        return {**answer.to_dict(), "markdown": render.inert_urls(to_markdown(answer))}

    def clear() -> tuple:
        hidden = gr.update(visible=False, value=None)
        return [], "", Session(), render.sources_panel(None), hidden, hidden

    def header() -> str:
        stats = render.stats_html(len(pipeline.index), pipeline.index.chunk_count, settings.embed_model,
                                  settings.retrieval_mode)
        running = ingest_status.read(settings.data_dir)  # an ingest beside this UI: answers use what it committed
        if running is not None:
            stats = stats.replace("</div>", f'<span class="ingesting">{render.esc(running.line)}</span></div>', 1)
        return (f'<div class="app-header"><div><h1>Paper QA</h1><p>Grounded answers from research-paper '
                f"abstracts. Every claim cites the abstract it comes from; when the papers do not cover "
                f"a question, the assistant says so.</p></div>{stats}</div>")

    def refreshed() -> tuple:
        """What an upload or a removal changes on the page: header counts, sources, the filter's choices."""
        pipeline.index.refresh()
        counts = library_sources.list_sources(settings)
        return header(), counts, gr.update(choices=[("All sources", "")] + [(n, n) for n in sorted(counts)])

    def remove(name: str) -> tuple:
        try:
            removed = library_sources.remove(settings, name)
            note = library.notice_html(f"Removed {name}: {removed:,} papers.")
        except RagError as err:
            note = library.refused_html(str(err))
        return (note, *refreshed())

    with _Blocks(title="Paper QA — cited answers from research abstracts", analytics_enabled=False,
                 fill_width=True, delete_cache=(3600, 3600)) as app:
        session = gr.State(Session())
        head = gr.HTML(header(), elem_id="header")
        # The header follows an ingest running beside the UI (counts and its progress line).
        gr.Timer(3.0).tick(lambda: (pipeline.index.refresh(), header())[1], None, head, api_visibility="private",
                           show_progress="hidden")
        with gr.Row(equal_height=False):
            with gr.Column(scale=7, min_width=480):
                chat = gr.Chatbot(
                    label="Conversation", show_label=False, elem_id="chat", height="66vh", layout="panel",
                    feedback_options=None, buttons=[], autoscroll=False,  # PAGE_JS scrolls to each new turn
                    latex_delimiters=[],  # abstracts' "$" signs are text, not formulas
                    placeholder="<div class='chat-empty'><h3>Ask about the papers in the corpus</h3><p>Answers "
                                "quote the abstracts; click a marker such as [1] to see the supporting "
                                "passage highlighted.</p></div>",
                )
                with gr.Row(elem_id="ask-row"):
                    question = gr.Textbox(placeholder="Ask a question about the papers…  (Enter to send)",
                                          show_label=False, container=False, scale=8, max_lines=6,
                                          elem_id="question", autofocus=True)
                    ask_btn = gr.Button("Ask", variant="primary", size="md", scale=1, min_width=80, elem_id="ask")
                    clear_btn = gr.Button("Clear chat", variant="secondary", size="md", scale=1, min_width=110,
                                          elem_id="clear")
                with gr.Row(elem_id="examples"):
                    gr.HTML('<span class="examples-label">Try:</span>', elem_classes="examples-label-block",
                            js_on_load=None)
                    example_btns = [gr.Button(q, size="sm", variant="secondary", elem_classes="example")
                                    for q in EXAMPLES]
                with gr.Row(elem_id="export-row"):
                    md_btn = gr.DownloadButton("Download answer (.md)", visible=False, size="sm",
                                               variant="secondary", elem_id="download-md")
                    bib_btn = gr.DownloadButton("Cited papers (.bib)", visible=False, size="sm",
                                                variant="secondary", elem_id="download-bib")
            with gr.Column(scale=4, min_width=320):
                with gr.Accordion("Answer settings", open=True, elem_id="settings"):
                    answerer = _answerer_choice(settings)
                    max_papers = gr.Slider(1, max(20, settings.max_papers), value=settings.max_papers, step=1,
                                           label="Papers per answer (at most)", elem_id="max-papers")
                    follow_mode = gr.Radio(
                        [("Detect", "auto"), ("Always", "on"), ("Never", "off")], value="auto",
                        label="Follow-up on the previous answer", elem_id="follow-up",
                        info="Detect: questions such as “which of those…” search only the previous "
                             "answer's papers.",
                    )
                    counts = library_sources.list_sources(settings)
                    with gr.Group(elem_id="filters"):
                        with gr.Row():
                            year = gr.Textbox(label="Years", placeholder="e.g. 2020-2024", max_lines=1,
                                              elem_id="filter-year", scale=1, min_width=100)
                            category = gr.Textbox(label="arXiv category", placeholder="e.g. cs.CV", max_lines=1,
                                                  elem_id="filter-category", scale=1, min_width=100)
                        with gr.Row():
                            source = gr.Dropdown([("All sources", "")] + [(n, n) for n in sorted(counts)], value="",
                                                 label="Source", elem_id="filter-source", scale=1, min_width=100)
                            author = gr.Textbox(label="Author", placeholder="e.g. Kaiming He", max_lines=1,
                                                elem_id="filter-author", scale=1, min_width=100)
                with gr.Accordion("Your papers", open=writable, elem_id="library"):
                    known = gr.State(counts)
                    if writable:
                        upload = gr.File(label="Add papers: .bib .ris .jsonl .json .csv .txt (or .gz), at most "
                                         f"{settings.ui_max_upload_bytes / 2**20:.0f} MiB",
                                         file_count="multiple", file_types=library_sources.upload_types(),
                                         elem_id="upload", height=120)
                    else:
                        gr.HTML('<div class="library-readonly">Adding and removing papers is off: this UI is '
                                "reachable from other machines without a password.</div>")
                    note = gr.HTML("", elem_id="upload-summary", padding=False)

                    @gr.render(inputs=known)
                    def show_sources(current):
                        library.source_rows(current or {}, writable, remove, [note, head, known, source])
                sources = gr.HTML(render.sources_panel(None), elem_id="sources", padding=True, container=True,
                                  js_on_load=None)

        inputs = [question, session, answerer, max_papers, follow_mode, year, source, author, category]
        outputs = [chat, question, session, sources, md_btn, bib_btn]
        # Private: the page's own events; the headless endpoint is `ask` below.
        private = dict(api_visibility="private", show_progress="hidden")
        ask_btn.click(respond, inputs, outputs, **private)
        question.submit(respond, inputs, outputs, **private)
        clear_btn.click(clear, None, outputs, **private)
        chat.clear(clear, None, outputs, **private)  # the chat's own bin icon: forget the history too
        for btn, text in zip(example_btns, EXAMPLES):
            btn.click(lambda t=text: t, None, question, **private).then(respond, inputs, outputs, **private)
        if writable:
            upload.upload(library.upload_handler(settings, pipeline, refreshed), upload,
                          [note, upload, head, known, source], api_visibility="private", concurrency_limit=1,
                          show_progress="full")
        gr.api(ask, api_name="ask")
        if mcp:
            tools.register(settings, pipeline)
    app.queue(default_concurrency_limit=CONCURRENCY)
    return app


def _answerer_choice(settings: Settings) -> gr.Radio:
    """Extractive always; LLM only when an endpoint is configured, otherwise shown disabled
    with the reason."""
    choices = [("Extractive (offline, quotes the abstracts)", "extractive"), (f"LLM ({settings.llm_model})", "llm")]
    if settings.llm_configured:
        url = urlsplit(settings.llm_base_url or "https://api.openai.com")
        where = f"{url.hostname}:{url.port}" if url.port else url.hostname  # never credentials in a URL
        return gr.Radio(choices, value=settings.answerer, label="Answerer", elem_id="answerer",
                        info=f"LLM endpoint: {where}.")
    return gr.Radio(choices, value="extractive", label="Answerer", elem_id="answerer", interactive=False,
                    info="LLM unavailable: no endpoint configured (set RAG_LLM_BASE_URL, or OPENAI_API_KEY).")


def exposure_warning(settings: Settings) -> str | None:
    """A warning when the UI is reachable beyond this machine without a password."""
    if settings.ui_username and settings.ui_password:
        return None
    host = settings.ui_host.strip("[]")
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: treat as reachable
    llm = ("; ask the configured LLM endpoint, at your cost, as often as they like" if settings.llm_configured
           else "")
    return (f"WARNING: the chat UI listens on {settings.ui_host}, reachable from other machines, without a "
            "password. Anyone who can reach it can: ask questions in the page or through the /ask API, as "
            f"many as they like (at most {CONCURRENCY} are answered at once, the rest queue){llm}; read "
            "every title and abstract in the index through the answers; see the corpus size, the embedding "
            "model and the retrieval mode. They cannot upload files, change the index or the settings, or "
            f"see other visitors' conversations; request bodies are capped at "
            f"{settings.ui_max_request_bytes:,} bytes (RAG_UI_MAX_REQUEST_BYTES). Set RAG_UI_USERNAME and "
            "RAG_UI_PASSWORD, or bind to 127.0.0.1.")


def launch_options(settings: Settings, throttle: LoginThrottle | None = None, mcp: bool = False) -> dict:
    """Keyword arguments for `Blocks.launch`: address, optional login, look, the guard in
    front of Gradio (body cap, uploads only where the UI is not exposed, login throttle, the
    login on the MCP routes), the MCP server when `mcp`, and no extras (no share link, no
    file access, no external footer links). The login's "both or neither" rule is a Settings
    validator; MCP on an address reachable from other machines without a login is refused
    (ConfigError)."""
    auth = ((settings.ui_username, settings.ui_password.get_secret_value())
            if settings.ui_username and settings.ui_password else None)
    exposed = exposure_warning(settings) is not None
    if mcp and exposed:  # MCP tools read every abstract: never open to the network without a login
        raise ConfigError(f"--mcp on {settings.ui_host}, reachable from other machines, needs a login: set "
                          "RAG_UI_USERNAME and RAG_UI_PASSWORD (MCP clients send them as HTTP Basic "
                          "credentials), or bind to 127.0.0.1")
    uploads = None if exposed else settings.ui_max_upload_bytes
    guard = Middleware(Guard, max_body=settings.ui_max_request_bytes, throttle=throttle or LoginThrottle(),
                       max_upload=uploads, mcp_login=auth)
    return dict(mcp_server=mcp,
        server_name=settings.ui_host, server_port=settings.ui_port, auth=auth, share=False, quiet=True,
        show_error=False, ssr_mode=False, footer_links=["api", "settings"], theme=theme(),
        css=CSS_PATH.read_text(encoding="utf-8"), js=PAGE_JS, max_file_size=settings.ui_max_upload_bytes,
        app_kwargs={"middleware": [guard]},
        auth_message="Paper QA: sign in with the RAG_UI_USERNAME / RAG_UI_PASSWORD credentials.",
    )


def theme() -> gr.themes.Base:
    """A quiet theme with system fonts (the default ones are fetched from Google Fonts)."""
    sans = ["Inter", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate", font=sans,
                          font_mono=mono, radius_size="md", text_size="md")


def warm_up(pipeline) -> None:
    """Load the embedding model and run one search, so the first question waits no longer
    than any other (loading the model costs seconds)."""
    pipeline.retrieve("warm up the embedding model", k=1)


def serve(settings: Settings, pipeline=None, mcp: bool = False) -> gr.Blocks:
    """Open the pipeline, start the server while the model loads in the background, and
    print the URL once both are done: a printed URL means "ready". Returns the running app."""
    if pipeline is None:
        from rag import default_assistant

        pipeline = default_assistant(settings).pipeline
    options = launch_options(settings, mcp=mcp)
    app = build_app(settings, pipeline, mcp=mcp)
    warning = exposure_warning(settings)
    if warning:
        print(warning, file=sys.stderr)
    with ThreadPoolExecutor(1, thread_name_prefix="warm-up") as pool:
        warming = pool.submit(warm_up, pipeline)
        app.launch(prevent_thread_lock=True, **options)
        warming.result()  # a store that fails here would fail the first question: say it now
    host = "127.0.0.1" if settings.ui_host in ("0.0.0.0", "::") else settings.ui_host
    print(f"Chat UI running at http://{host}:{app.server_port}  (Ctrl+C to stop)", flush=True)
    if mcp:
        login = "  (the UI login, as HTTP Basic credentials)" if settings.ui_username else ""
        print(f"MCP server (streamable HTTP) at http://{host}:{app.server_port}/gradio_api/mcp/  "
              f"tools: answer, retrieve, stats, ask{login}", flush=True)
    return app


def launch(settings: Settings, mcp: bool = False) -> None:
    """Serve the UI until interrupted (`rag ui`, `rag ui --mcp`); print its URL and any
    exposure warning."""
    serve(settings, mcp=mcp).block_thread()
