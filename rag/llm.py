"""The LLM answerer: any OpenAI-compatible chat endpoint, with every citation verified.

`LLMAnswerer.stream(question, used, history, fallback)` sends the numbered abstracts of the
papers retrieval kept, fenced as data (`<source n="1" title="...">abstract</source>`), streams
the model's text, and ends with an `Answer` that keeps only citations which point to a source
that was sent *and* support their sentence (`rag.citations.validate`). OpenAI, a llama.cpp server, vLLM and
Ollama all speak this protocol.

One deadline, `llm_deadline` (60 s unless set), bounds the whole answer: connecting, the
retries of 429/5xx/timeouts (made here, not by the openai client, so that a `Retry-After` wait
is weighed against the time left: one that would pass the deadline is not waited for) and the
streaming. The request runs in a worker thread while the caller waits on it for the time left,
so neither a hung connection, nor a server that sends keep-alive bytes forever, nor one that
never stops writing can hold an answer longer; the worker is told to stop and drops the
connection at its next chunk of bytes.

When the endpoint fails (unreachable, timeout, rate limit, HTTP error, malformed response,
stream cut off, deadline passed) or its answer is empty or has no supported citation, the
caller's extractive answer is returned instead with a one-line note. Endpoint failures never
raise, and the API key never appears in a note or a log line.

Not here: retrieval, choosing the papers (rag/evidence.py), deciding to abstain (rag/abstain.py).
"""

from __future__ import annotations

import email.utils
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

try:  # the HTTP library the openai client speaks: httpx2 from openai 3 on, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older openai
    import httpx

from rag import prompts
from rag.citations import unmarked, validate
from rag.conversation import Message
from rag.models import Answer, Source
from rag.settings import Settings
from rag.text import inert_links

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"  # local servers need no key, but the client insists on one
HISTORY_MESSAGES = 4  # earlier messages sent along: the last two exchanges, enough for "which of those"
HISTORY_CHARS = 2000  # per earlier message; old answers are context, not evidence
TEMPERATURE = 0.0  # grounded QA: the most likely wording, reproducible across runs
BACKOFF, BACKOFF_CAP = 0.5, 8.0  # seconds before retry n (0.5 * 2**n, at most 8) when no Retry-After is sent
RETRIED_STATUS = (408, 409, 429)  # ... and every 5xx: what the openai client itself retries


class LLMFailure(Exception):
    """The endpoint gave no usable answer; the message is the user-facing reason (no secrets)."""


@dataclass(frozen=True)
class _Finished:
    """Last event of a generation: why the model stopped ("stop", "length", ...)."""

    reason: str


_END = object()  # the worker's last event: the endpoint's answer is complete


class _Stopped(Exception):
    """The answer's deadline passed while its bytes were still being read."""


_worker = threading.local()  # .stop: the stop event of the answer this thread fetches


class _StoppableBody(httpx.SyncByteStream):
    """A response body that ends (`_Stopped`) once `stop` is set, checked at every chunk of
    bytes, keep-alive bytes included: the SSE parser swallows those, so only here can a
    server that never finishes be left."""

    def __init__(self, inner, stop: threading.Event):
        self._inner, self._stop = inner, stop

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if self._stop.is_set():
                raise _Stopped()
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _watch_body(response: httpx.Response) -> None:
    """httpx response hook: a body read by an answer's worker stops with that answer."""
    stop = getattr(_worker, "stop", None)
    if stop is not None:
        response.stream = _StoppableBody(response.stream, stop)


def asked_wait(headers) -> float | None:
    """Seconds a response asks the client to wait (`retry-after-ms`, or `retry-after` as
    seconds or an HTTP date), or None when it does not say:
    `asked_wait({"retry-after": "120"})` -> 120.0."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return None


# --- the prompt -----------------------------------------------------------------------------

def _attribute(text: str) -> str:
    """Text safe inside a double-quoted attribute; apostrophes stay readable."""
    return escape(text, quote=False).replace('"', "&quot;")


def fence_sources(used: list[Source]) -> str:
    """Numbered sources as `<source n="1" title="...">abstract</source>` blocks. Angle brackets
    and ampersands in the text are escaped, so an abstract cannot close its fence early and
    pose as instructions; bracketed numbers in it ("as in [7]") are sent as "(7)", so the model
    does not mistake them for the source numbers it cites with."""
    return "\n\n".join(
        f'<source n="{n}" title="{_attribute(src.title)}">\n'
        f'{escape(unmarked(src.paper.abstract), quote=False)}\n</source>'
        for n, src in enumerate(used, start=1)
    )


def messages(question: str, used: list[Source], history: list[Message] | None) -> list[dict]:
    """Chat messages: the system rules, the last few turns of the conversation, then the user
    turn holding the fenced sources and the question."""
    earlier = [{"role": m["role"], "content": m["content"][:HISTORY_CHARS]} for m in history or []
               if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
    user = prompts.render("answer", question=question, sources=fence_sources(used), count=len(used))
    return [{"role": "system", "content": prompts.render("system")},
            *earlier[-HISTORY_MESSAGES:],
            {"role": "user", "content": user}]


# --- the answerer ---------------------------------------------------------------------------

def _secret(settings: Settings) -> str | None:
    key = settings.llm_api_key  # always a SecretStr: every override goes through with_overrides
    return (key.get_secret_value() if key is not None else None) or None


def _identity(settings: Settings) -> tuple:
    """Everything an LLMAnswerer reads from its settings."""
    return (settings.llm_base_url, settings.llm_model, _secret(settings), settings.llm_timeout,
            settings.llm_max_retries, settings.llm_deadline, settings.llm_max_tokens, settings.llm_stream,
            settings.support_threshold)


def _connection_problem(err: BaseException) -> str:
    """What lies under a connection error: "connection refused", "host not found", or, when
    the chain names neither, "connection failed"."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = str(err).lower()
        if isinstance(err, ConnectionRefusedError) or "refused" in text:
            return "connection refused"
        if isinstance(err, socket.gaierror) or "name or service not known" in text or "nodename nor servname" in text:
            return "host not found"
        err = err.__cause__ or err.__context__
    return "connection failed"


class LLMAnswerer:
    """Answers from an OpenAI-compatible endpoint; see the module docstring for the contract."""

    name = "llm"

    def __init__(self, settings: Settings, client=None):
        self.settings = settings
        self._identity = _identity(settings)
        self._key = _secret(settings)
        if client is None:
            import openai

            # Everything explicit: the client would otherwise read OPENAI_API_KEY/OPENAI_BASE_URL itself.
            # No retries in the client: `_create` retries within the deadline.
            client = openai.OpenAI(api_key=self._key or NO_KEY, base_url=settings.llm_base_url or OPENAI_URL,
                                   timeout=settings.llm_timeout, max_retries=0,
                                   http_client=openai.DefaultHttpxClient(event_hooks={"response": [_watch_body]}))
        self.client = client
        parts = urlsplit(settings.llm_base_url or OPENAI_URL)
        self.endpoint = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # for notes: no user:password@

    def serves(self, settings: Settings) -> bool:
        """Whether this instance was built for the same endpoint, model, key, timeout and
        answering options, so the pipeline can reuse it."""
        return _identity(settings) == self._identity

    def stream(self, question: str, used: list[Source], history: list[Message] | None,
               fallback: Callable[[], Answer]) -> Iterator[str | Answer]:
        """Text deltas as the model writes them, then the validated Answer (answerer="llm"), or
        `fallback()` (the extractive answer, built only then) with a note when the endpoint or
        its answer is unusable."""
        s = self.settings
        chat = messages(question, used, history)
        parts: list[str] = []
        finish = ""
        try:
            for event in self._within_deadline(chat):
                if isinstance(event, _Finished):
                    finish = event.reason
                else:
                    parts.append(event)
                    yield event
            text = "".join(parts).strip()
            if not text:
                raise LLMFailure("the LLM returned an empty answer")
            checked = validate(text, used, s.support_threshold)
            if not checked.citations:
                raise LLMFailure("the LLM answer had no citation supported by the sources")
        except LLMFailure as failure:
            extractive = fallback()
            yield ("\n\n" if parts else "") + extractive.text  # the preview ends as the final answer does
            yield self._fall_back(extractive, str(failure))
            return
        answer = Answer(question=question, text=inert_links(checked.text), citations=checked.citations, sources=used,
                        answerer="llm", unsupported=checked.unsupported, removed_markers=checked.removed_markers)
        if finish == "length":
            answer.notes.append(f"the LLM answer reached the {s.llm_max_tokens}-token limit and may be cut short")
        yield answer

    # --- the deadline -------------------------------------------------------------------
    def _within_deadline(self, chat: list[dict]) -> Iterator[str | _Finished]:
        """The endpoint's events (text deltas, then `_Finished`), fetched by a worker thread;
        this generator waits for each no longer than the deadline leaves, then raises
        LLMFailure. However it ends, the worker is told to stop."""
        deadline = time.monotonic() + self.settings.llm_deadline
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        threading.Thread(target=self._fetch, args=(chat, deadline, stop, events), daemon=True,
                         name="llm-answer").start()
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise queue.Empty
                    event = events.get(timeout=left)
                except queue.Empty:
                    raise LLMFailure(self._late()) from None
                if event is _END:
                    return
                if isinstance(event, LLMFailure):
                    raise event
                yield event
        finally:
            stop.set()

    def _fetch(self, chat: list[dict], deadline: float, stop: threading.Event, events: queue.Queue) -> None:
        """The worker: put the endpoint's events on `events`, then `_END` or the LLMFailure;
        stop at the next event (or chunk of bytes) once `stop` is set."""
        _worker.stop = stop
        fetch = self._deltas if self.settings.llm_stream else self._whole
        try:
            for event in fetch(chat, deadline, stop):
                if stop.is_set():
                    return
                events.put(event)
            events.put(_END)
        except LLMFailure as failure:
            events.put(failure)
        except Exception as err:  # never leave the caller waiting out the deadline for nothing
            events.put(LLMFailure(f"LLM request failed ({type(err).__name__})"))

    def _late(self) -> str:
        return f"the LLM gave no complete answer within the {self.settings.llm_deadline:g}-second deadline " \
               "(RAG_LLM_DEADLINE)"

    # --- talking to the endpoint --------------------------------------------------------
    def _create(self, chat: list[dict], stream: bool, deadline: float, stop: threading.Event):
        """The request, retried on 429/5xx/timeouts up to llm_max_retries times, each try
        bounded by llm_timeout and the time left. A wait for a retry (the server's Retry-After,
        else a backoff) that would pass the deadline is not begun: the failure is final."""
        s = self.settings
        for attempt in range(s.llm_max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0 or stop.is_set():
                raise LLMFailure(self._late())
            try:
                return self.client.chat.completions.create(
                    model=s.llm_model, messages=chat, stream=stream, max_tokens=s.llm_max_tokens,
                    temperature=TEMPERATURE, timeout=min(s.llm_timeout, left))
            except Exception as err:  # every failure of the request becomes a fallback, never a traceback
                wait = _retry_wait(err, attempt)
                if wait is None or attempt == s.llm_max_retries:
                    raise LLMFailure(self._reason(err, retries=attempt)) from None
                if time.monotonic() + wait >= deadline:
                    raise LLMFailure(f"{self._reason(err, retries=attempt)}; a retry after the {wait:g} s "
                                     f"asked for would pass the {s.llm_deadline:g}-second deadline "
                                     "(RAG_LLM_DEADLINE)") from None
                if stop.wait(wait):
                    raise LLMFailure(self._late()) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _deltas(self, chat: list[dict], deadline: float, stop: threading.Event) -> Iterator[str | _Finished]:
        """Streamed text deltas, then `_Finished`. A stream that ends without a finish reason
        (the server closed the connection mid-answer) is a failure, as is one that runs past
        the timeout."""
        timeout = self.settings.llm_timeout
        stream = self._create(chat, True, deadline, stop)
        started = time.monotonic()
        finish = None
        try:
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:  # some servers send a final usage-only chunk
                        if choice.delta is not None and choice.delta.content:
                            yield choice.delta.content
                        finish = choice.finish_reason or finish
                    if time.monotonic() - started > timeout:
                        raise LLMFailure(f"the LLM answer took longer than {timeout:g} s")
        except LLMFailure:
            raise
        except Exception as err:
            raise LLMFailure(self._reason(err, streaming=True)) from None
        if finish is None:
            raise LLMFailure("the LLM stream was cut off mid-answer")
        yield _Finished(finish)

    def _whole(self, chat: list[dict], deadline: float, stop: threading.Event) -> Iterator[str | _Finished]:
        """The non-streaming answer as one delta, then `_Finished`."""
        response = self._create(chat, False, deadline, stop)
        try:
            choice = response.choices[0]
            text, finish = choice.message.content or "", choice.finish_reason or "stop"
        except Exception as err:  # no choices, no message: a body that only looked like JSON
            raise LLMFailure(self._reason(err)) from None
        if text:
            yield text
        yield _Finished(finish)

    def _reason(self, err: Exception, streaming: bool = False, retries: int | None = None) -> str:
        """One line saying what went wrong, built from the error's type and status only: error
        bodies are never shown, since some endpoints echo part of the key in them."""
        import openai

        s = self.settings
        retries = s.llm_max_retries if retries is None else retries
        if isinstance(err, openai.APITimeoutError):
            return (f"LLM endpoint {self.endpoint} timed out (no response within {s.llm_timeout:g} s, "
                    f"{retries} retries)")
        if isinstance(err, openai.APIConnectionError):
            if streaming:
                return "the LLM stream was cut off mid-answer"
            return f"LLM endpoint {self.endpoint} unreachable ({_connection_problem(err)})"
        if isinstance(err, openai.RateLimitError):
            return f"LLM endpoint {self.endpoint} is rate-limiting (HTTP 429 after {retries} retries)"
        if isinstance(err, openai.APIStatusError):
            return f"LLM endpoint {self.endpoint} returned HTTP {err.status_code}"
        if isinstance(err, (ValueError, LookupError, AttributeError, TypeError, openai.APIResponseValidationError)):
            return f"LLM endpoint {self.endpoint} returned a malformed response"
        return f"LLM request failed ({type(err).__name__})"

    def _fall_back(self, fallback: Answer, reason: str) -> Answer:
        note = f"{reason}: showing the extractive answer"
        if self._key and len(self._key) >= 4:
            note = note.replace(self._key, "***")  # defence in depth: no message above carries it
        log.info("%s", note)  # info, not warning: the note already tells the user
        fallback.notes.append(note)
        return fallback


def _retry_wait(err: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying a request that failed with `err` (try `attempt`, from
    0), or None when a retry would not help (a 400, a 401, a malformed answer)."""
    import openai

    if isinstance(err, openai.APIConnectionError):  # timeouts included
        asked = None
    elif isinstance(err, openai.APIStatusError) and (err.status_code in RETRIED_STATUS or err.status_code >= 500):
        asked = asked_wait(err.response.headers)
    else:
        return None
    return asked if asked is not None else min(BACKOFF * 2 ** attempt, BACKOFF_CAP)
