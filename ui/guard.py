"""What the chat UI's HTTP server refuses before Gradio sees a request.

`Guard` is an ASGI middleware (handed to Gradio's FastAPI app through `launch`'s
`app_kwargs`) with three jobs:

- request bodies larger than `max_body` bytes are answered 413 without being read: by the
  Content-Length header when there is one, by counting as the body streams in otherwise;
- the routes through which Gradio stores files (`/gradio_api/upload`, `process_recording`)
  are answered 403, unless `max_upload` is given (the UI's "Your papers" panel is writable:
  not exposed to strangers); then `/gradio_api/upload` alone is open, its bodies capped at
  `max_upload` bytes plus room for the multipart framing;
- `/login` is throttled per client address by a `LoginThrottle`: after a few wrong passwords
  each further attempt must wait twice as long as the one before (429 with Retry-After);
- the MCP server (`/gradio_api/mcp/...`), which Gradio mounts outside its own login, asks
  for the same login when one is set (`mcp_login`): HTTP Basic credentials, which every MCP
  client can send as an `Authorization` header; a wrong one counts as a failed login.

What it does not do: authenticate the page and its API (Gradio does, with the configured
login) or limit how often questions are asked (the queue's concurrency limit bounds the work).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
import threading
import time
from collections.abc import Callable

REFUSED_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording")
UPLOAD_PATH = "/gradio_api/upload"
MULTIPART_ROOM = 64 * 1024  # boundaries and part headers around an uploaded file
LOGIN_PATHS = ("/login", "/login/")
# Gradio mounts its MCP server at <root>/gradio_api/mcp (streamable HTTP, SSE, schema); repeated
# slashes are folded first, so `//gradio_api//mcp/` is no way around the login.
_MCP_PATH = re.compile(r"(^|/)gradio_api/mcp(/|$)")


def mcp_path(path: str) -> bool:
    """Whether `path` is served by Gradio's MCP server: `mcp_path("/gradio_api/mcp/")` -> True."""
    return bool(_MCP_PATH.search(re.sub("/+", "/", path)))


def basic_credentials(headers: dict[bytes, bytes]) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header, or None without a readable one."""
    kind, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class LoginThrottle:
    """Failed logins per client: `free` failures cost nothing; after that, the client must
    wait `base * 2**(failures - free)` seconds (at most `cap`) before its next attempt is
    even checked. A success clears the client's record.

    >>> t = LoginThrottle(free=2, base=1.0, clock=lambda: 100.0)
    >>> t.failed("a"); t.failed("a"); t.wait("a")
    0.0
    >>> t.failed("a"); t.wait("a")   # third failure: 1 s
    1.0
    """

    def __init__(self, free: int = 5, base: float = 1.0, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, most_clients: int = 10_000):
        self.free, self.base, self.cap, self.clock = free, base, cap, clock
        self.most_clients = most_clients  # bounds memory under a spray of client addresses
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (failures, when it may retry)
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait before a login attempt is checked (0: go ahead)."""
        with self._lock:
            _, until = self._failures.get(client, (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            count = self._failures.get(client, (0, 0.0))[0] + 1
            delay = 0.0 if count <= self.free else min(self.cap, self.base * 2 ** (count - self.free - 1))
            if client not in self._failures and len(self._failures) >= self.most_clients:
                self._failures.pop(next(iter(self._failures)))  # the oldest record goes first
            self._failures[client] = (count, self.clock() + delay)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


async def _reply(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware; see the module docstring. `throttle` is shared by every request."""

    def __init__(self, app, max_body: int, throttle: LoginThrottle | None = None, max_upload: int | None = None,
                 mcp_login: tuple[str, str] | None = None):
        self.app = app
        self.max_body = max_body
        self.throttle = throttle or LoginThrottle()
        self.max_upload = max_upload  # None: no uploads at all
        self.mcp_login = mcp_login  # None: no login configured, MCP answers as the page does

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit, setting = self.max_body, "RAG_UI_MAX_REQUEST_BYTES"
        if scope["method"] in ("POST", "PUT", "PATCH") and path.rstrip("/").startswith(REFUSED_PATHS):
            if self.max_upload is None or path.rstrip("/") != UPLOAD_PATH or scope["method"] != "POST":
                return await _reply(send, 403, "this app accepts no file uploads")
            limit, setting = self.max_upload + MULTIPART_ROOM, "RAG_UI_MAX_UPLOAD_BYTES"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _reply(send, 413, f"request body over the limit of {limit:,} bytes ({setting})")
        if self.mcp_login is not None and mcp_path(path):
            refused = self._mcp_refusal(scope)
            if refused:
                return await _reply(send, *refused)
        receive, over = self._counted(receive, limit)
        if scope["method"] == "POST" and path in LOGIN_PATHS:
            return await self._login(scope, receive, send, over)
        return await self.app(scope, receive, self._unless_over(send, over))

    def _mcp_refusal(self, scope) -> tuple | None:
        """(status, message, headers) refusing an MCP request without the login, or None to let
        it through. Wrong credentials are throttled like wrong passwords on the login page."""
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait(client)
        if wait > 0:
            return 429, f"too many failed logins: try again in {math.ceil(wait)} s", {
                "retry-after": str(math.ceil(wait))}
        given = basic_credentials(dict(scope.get("headers") or []))
        user, password = self.mcp_login
        if given is not None and (hmac.compare_digest(given[0].encode(), user.encode())
                                  & hmac.compare_digest(given[1].encode(), password.encode())):
            self.throttle.succeeded(client)
            return None
        if given is not None:
            self.throttle.failed(client)
        return 401, ("the MCP server needs the UI login: send RAG_UI_USERNAME and RAG_UI_PASSWORD as HTTP "
                     "Basic credentials"), {"www-authenticate": 'Basic realm="Paper QA MCP", charset="UTF-8"'}

    def _counted(self, receive, limit: int):
        """`receive` that stops a body without Content-Length once it passes `limit`: the
        app sees the client disconnect, and the client gets 413."""
        state = {"read": 0, "over": False, "limit": limit}

        async def counted():
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > limit:
                    state["over"] = True
                    return {"type": "http.disconnect"}
            return message

        return counted, state

    def _unless_over(self, send, over: dict):
        started = {"done": False}

        async def guarded(message):
            if over["over"]:
                if not started["done"]:
                    started["done"] = True
                    await _reply(send, 413, f"request body over the limit of {over['limit']:,} bytes")
                return  # whatever the app answers to a cut-off body is dropped
            started["done"] = True
            await send(message)

        return guarded

    async def _login(self, scope, receive, send, over: dict):
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait(client)
        if wait > 0:
            return await _reply(send, 429, f"too many failed logins: try again in {math.ceil(wait)} s",
                                {"retry-after": str(math.ceil(wait))})
        status = {"code": 0}

        async def watched(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, self._unless_over(watched, over))
        if status["code"] == 200:
            self.throttle.succeeded(client)
        elif 400 <= status["code"] < 500:
            self.throttle.failed(client)
