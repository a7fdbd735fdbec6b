"""A scripted, deterministic OpenAI-compatible server for tests of the LLM answerer.

Real HTTP on a loopback port (stdlib `http.server` in a thread), so the real openai client,
its retries and its SSE parsing are what gets tested; only the model is scripted. Each test
queues `Reply`s: request i gets reply i, and the last reply repeats once the queue runs out.
Every request body received is kept in `stub.requests` for assertions.

    with OpenAIStub() as stub:
        stub.script(Reply(status=429), Reply(text="CvT adds convolutions [1]."))
        settings = base.with_overrides({"llm_base_url": stub.url})
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """What the stub does with one request."""

    text: str = ""  # the answer, streamed word by word or sent whole
    status: int = 200  # non-200: an OpenAI-style error body with this status
    error_message: str = "scripted error"  # the error body's message (non-200 only)
    delay: float = 0.0  # seconds to wait before answering (past the client timeout: a timeout)
    pause: float = 0.0  # streaming: seconds between content chunks (a slow drip, each read in time)
    malformed: bool = False  # a body (or SSE event) that is not JSON
    cut_after: int | None = None  # streaming: stop after this many content chunks, no finish/[DONE]
    abrupt: bool = True  # with cut_after: drop the connection mid-chunk (else end the body cleanly)
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)  # extra headers, e.g. retry-after-ms
    keepalive: float = 0.0  # streaming: after the text, an SSE comment every this many seconds, never a finish
    endless: bool = False  # streaming: the text again and again, never a finish (with `pause` between words)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict


class OpenAIStub:
    """`/v1/chat/completions`, streaming (SSE, chunked) and not, following a script."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._replies: list[Reply] = [Reply(text="OK.")]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False  # keep-alive handler threads must not hold up shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies = list(replies)
            self.requests.clear()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            index = min(len(self.requests), len(self._replies)) - 1
            return self._replies[index]

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()  # wakes handlers sleeping through a scripted delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _chunk(text: str | None, finish: str | None, role: bool = False) -> dict:
    delta = {"role": "assistant"} if role else ({"content": text} if text is not None else {})
    return {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _words(text: str) -> list[str]:
    """The text in word-sized deltas that join back to it exactly."""
    out, current = [], ""
    for ch in text:
        if ch.isspace() and current and not current[-1].isspace():
            out.append(current)
            current = ""
        current += ch
    return out + ([current] if current else [])


def _handler_for(stub: OpenAIStub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as real servers use

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            try:
                self._answer()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a timeout test): nothing to tell it

        def _answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"unparsable": raw.decode("utf-8", "replace")}
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = stub._next(Received(self.path, headers, body))
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            if reply.delay and stub._stop.wait(reply.delay):
                return
            if reply.status != 200:
                error = {"error": {"message": reply.error_message, "type": "scripted", "code": reply.status}}
                return self._json(reply.status, error, reply.headers)
            if body.get("stream"):
                return self._sse(reply)
            if reply.malformed:
                return self._raw(200, b'{"id": "chatcmpl-stub", "choices": [{"mess', "application/json")
            return self._json(200, {
                "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                             "finish_reason": reply.finish_reason}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }, reply.headers)

        def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _event(self, payload: dict | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self._send_chunk(f"data: {data}\n\n".encode())

        def _sse(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self._event(_chunk(None, None, role=True))
            if reply.malformed:
                self._event('{"id": "chatcmpl-stub", "choices": [{"delta": {"content": "Vision')
            words = _words(reply.text)
            if reply.endless:
                while not stub._stop.wait(reply.pause):
                    for word in words:
                        self._event(_chunk(word, None))
                return
            for i, word in enumerate(words):
                if reply.cut_after is not None and i == reply.cut_after:
                    if reply.abrupt:  # half a chunk, then the socket goes away
                        self.wfile.write(b"40\r\ndata: {\"id\": ")
                        self.wfile.flush()
                        self.close_connection = True
                    else:  # a well-formed end of body, but no finish_reason and no [DONE]
                        self.wfile.write(b"0\r\n\r\n")
                    return
                if reply.pause and stub._stop.wait(reply.pause):
                    return
                self._event(_chunk(word, None))
            if reply.keepalive:
                while not stub._stop.wait(reply.keepalive):
                    self._send_chunk(b": keep-alive\n\n")
                return
            self._event(_chunk(None, reply.finish_reason))
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")

    return Handler
