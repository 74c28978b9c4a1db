"""A webhook receiver on 127.0.0.1: collects what Alertmanager posts, for the e2e tier.

A real HTTP server (a thread of the standard library's), not a fake of Alertmanager: the stack's
Alertmanager posts its webhook JSON here, and a test reads the notifications back.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

PATH = "/alerts"


@dataclass(frozen=True)
class Notification:
    """One post: when it arrived (``time.monotonic()``) and Alertmanager's JSON."""

    received_at: float
    payload: dict[str, Any]

    def alerts(self, name: str, status: str, **labels: str) -> list[dict[str, Any]]:
        """The alerts of this post named ``name`` in ``status`` with every label in ``labels``."""
        return [
            alert
            for alert in self.payload.get("alerts", [])
            if alert.get("status") == status
            and alert.get("labels", {}).get("alertname") == name
            and all(alert.get("labels", {}).get(k) == v for k, v in labels.items())
        ]


class WebhookReceiver:
    """Collects every JSON post to ``url``; start and stop it with ``with``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notifications: list[Notification] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payload = json.loads(body)
                except json.JSONDecodeError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver._notifications.append(Notification(time.monotonic(), payload))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test prints what it needs

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to post."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def notifications(self, since: float = 0.0) -> list[Notification]:
        """Every post received after ``since`` (``time.monotonic()``), oldest first."""
        with self._lock:
            return [n for n in self._notifications if n.received_at > since]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
