"""A local OpenAI-compatible chat server with scripted behaviour, for the narrator's tests.

The real OpenAI service cannot be reached from tests, so this speaks the same HTTP API on
127.0.0.1 and the real ``openai`` client talks to it. Each request takes the next scripted
behaviour (when the script is empty, the standing behaviour: a normal answer unless ``behave``
changed it) and is recorded with its arrival time, so tests can assert retries and the waits
between them. ``refuse`` stops listening (connections are refused, open ones cut) until
``listen``: an endpoint that is down.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"
ECHO_PREFIX = "ECHO:"


@dataclass(frozen=True)
class Reply:
    """A 200 answer: ``text``, or ``ECHO:`` followed by the user message when None."""

    text: str | None = None


@dataclass(frozen=True)
class RateLimited:
    """A 429 answer with ``Retry-After: retry_after`` (None: no header)."""

    retry_after: float | None = 1


@dataclass(frozen=True)
class ServerError:
    """A 5xx answer."""

    status: int = 500


@dataclass(frozen=True)
class Slow:
    """Wait ``seconds``, then behave as ``then``."""

    seconds: float
    then: Reply | RateLimited | ServerError = field(default_factory=Reply)


Behaviour = Reply | RateLimited | ServerError | Slow


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: ``time.monotonic()`` at arrival, path, headers, JSON body."""

    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_message(self) -> str:
        """The content of the last user message."""
        users = [m for m in self.body.get("messages", []) if m.get("role") == "user"]
        return str(users[-1]["content"]) if users else ""


class FakeOpenAIServer:
    """``POST /v1/chat/completions`` on 127.0.0.1, a free port, in a background thread.

    Use as a context manager; ``base_url`` is what ``openai.OpenAI(base_url=...)`` takes.
    """

    def __init__(self) -> None:
        self._script: list[Behaviour] = []
        self._standing: Behaviour = Reply()
        self._connections: set[socket.socket] = set()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._handler: type[BaseHTTPRequestHandler] | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        assert self._port, "server not started"
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests (after those already queued)."""
        with self._lock:
            self._script.extend(behaviours)

    def behave(self, behaviour: Behaviour) -> None:
        """Answer every request with ``behaviour`` once the script is empty (``Reply()``: mend)."""
        with self._lock:
            self._standing = behaviour

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self._requests.append(request)
            return self._script.pop(0) if self._script else self._standing

    @property
    def refusing(self) -> bool:
        """Whether the server is not listening (after :meth:`refuse`)."""
        return self._port != 0 and self._server is None

    def refuse(self) -> None:
        """Stop listening, so connections are refused, and cut the kept-alive ones."""
        self._close_listener()
        with self._lock:
            open_now, self._connections = list(self._connections), set()
        for connection in open_now:
            with contextlib.suppress(OSError):  # closed meanwhile
                connection.shutdown(socket.SHUT_RDWR)

    def listen(self) -> None:
        """Listen again, on the same port, after :meth:`refuse`."""
        if self._server is None:
            self._serve(self._port)

    def start(self) -> FakeOpenAIServer:
        """Bind a free port and serve in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                request = RecordedRequest(
                    at=time.monotonic(),
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw or b"{}"),
                )
                if self.path != CHAT_PATH:
                    self._send(404, _error("not found", "invalid_request_error"))
                    return
                behaviour = fake._next(request)
                if isinstance(behaviour, Slow):
                    if fake._stopping.wait(behaviour.seconds):
                        return
                    behaviour = behaviour.then
                if isinstance(behaviour, RateLimited):
                    headers = {}
                    if behaviour.retry_after is not None:
                        headers["Retry-After"] = f"{behaviour.retry_after:g}"
                    self._send(429, _error("rate limited", "rate_limit_exceeded"), headers)
                elif isinstance(behaviour, ServerError):
                    self._send(behaviour.status, _error("server error", "server_error"))
                else:
                    self._send(200, _completion(request, behaviour))

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): expected in deadline tests

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self._handler = Handler
        self._serve(0)
        return self

    def _serve(self, port: int) -> None:
        assert self._handler is not None
        server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        server.daemon_threads = True
        self._server, self._port = server, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def stop(self) -> None:
        """Stop serving; slow handlers still sleeping return at once."""
        self._stopping.set()
        self._close_listener()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def _completion(request: RecordedRequest, reply: Reply) -> dict[str, Any]:
    text = reply.text if reply.text is not None else f"{ECHO_PREFIX} {request.user_message}"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
