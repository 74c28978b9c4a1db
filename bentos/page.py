"""The investor's forecast page: static files from ``bentos/webpage/`` at ``/app/``.

The page is plain HTML, CSS and a small script that draws its SVG chart itself, and talks to
the public API only (``/v1/tickers``, ``/v1/forecast``, ``/v1/history``, ``/v1/model``) from the
same origin. Its Content-Security-Policy allows nothing but that origin, so no script, style or
request can reach another host, and a key kept in the tab's sessionStorage cannot be sent away
by an injected third-party script. ``/`` redirects to the page (the spec stays at
``/docs.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

PAGE_PATH = "/app"
PAGE_DIR = Path(__file__).with_name("webpage")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # Revalidated on every load (ETag): a deploy's new page is never mixed with an old script.
    "cache-control": "no-cache",
}


class _WithHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def add_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, add_headers)


async def _to_page(_: Request) -> RedirectResponse:
    return RedirectResponse(f"{PAGE_PATH}/", status_code=307)


def page_app(directory: Path = PAGE_DIR) -> Starlette:
    """The page's routes: ``/`` and ``/app`` redirect to ``/app/``, which serves ``directory``.

    Mounted at ``/`` by the service: BentoML's mounts match only their own routes, so every
    other path (the API, health, metrics, the spec) still reaches BentoML.
    """
    files = _WithHeaders(StaticFiles(directory=directory, html=True, check_dir=False))
    routes = [
        Route("/", _to_page, methods=["GET", "HEAD"]),
        Route(PAGE_PATH, _to_page, methods=["GET", "HEAD"]),
        Mount(PAGE_PATH, app=files, name="page"),
    ]
    return Starlette(routes=routes)
