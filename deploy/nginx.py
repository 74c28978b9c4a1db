"""The NGINX config of the stack, generated from the settings (never edited by hand).

The config itself is the template ``deploy/templates/nginx.conf.j2``; this module computes its
values.

One renderer serves the local stack (replicas on 127.0.0.1 ports, files under the stack's state
folder) and the compose file (replicas by service name, logs to stdout): only the
:class:`NginxLayout` differs. What the config does, and why:

- an upstream of the replicas with keepalive connections (HTTP/1.1, no ``Connection: close``);
- failover: a connection error, a timeout or a 502/503/504 sends the request to the next
  replica. Forecasts are POSTs but safe to retry (they change nothing), so
  ``non_idempotent`` is on for the API routes; the admin routes (cache invalidation and warm-up)
  are never retried through NGINX;
- timeouts from the latency budget: a replica answers within the budget (with its fallback if
  need be), so NGINX waits the budget plus a margin; one request's retries share twice that;
- the replica's ``X-FinSimples-Replica`` header passes through; every request gets an
  ``X-Request-ID`` (the client's, or NGINX's ``$request_id``), sent to the replica and back;
- a JSON access log with the upstream's address, status, connect/header/response times, and
  no credential a careless client put in a query string (:data:`CREDENTIAL_QUERY`);
- ``stub_status`` on a port bound to 127.0.0.1 only, for ``prometheus-nginx-exporter``, and
  the config's generation beside it (a reload is seen taking effect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from config.stack import StackConfig
from finsimples.templating import render

# Fields of the JSON access log; escape=json makes NGINX quote the values safely.
ACCESS_LOG_FIELDS = {
    "time": "$time_iso8601",
    "request_id": "$request_id",
    "remote_addr": "$remote_addr",
    "method": "$request_method",
    "uri": "$finsimples_log_uri",  # $request_uri, less a query string holding a credential
    "status": "$status",
    "bytes_sent": "$body_bytes_sent",
    "request_time": "$request_time",
    "upstream_addr": "$upstream_addr",
    "upstream_status": "$upstream_status",
    "upstream_connect_time": "$upstream_connect_time",
    "upstream_header_time": "$upstream_header_time",
    "upstream_response_time": "$upstream_response_time",
    "replica": "$upstream_http_x_finsimples_replica",
}

CREDENTIAL_QUERY = r"~*^(?<finsimples_log_path>[^?]*)[?].*(key|token|secret|passw|auth|fs_|sk-)"
"""A request URI whose query string looks like it carries a credential (case-insensitive): the
access log keeps its path only. Unlikely words in a query here; a ticker like KEYS is redacted
too, which costs nothing."""


@dataclass(frozen=True)
class NginxLayout:
    """Where NGINX runs: its listen addresses and its files.

    Attributes:
        listen: Address of the API, e.g. ``127.0.0.1:8080`` or ``80``.
        status_listen: Address of ``stub_status``, e.g. ``127.0.0.1:8081``.
        prefix: Folder of the pid file and temp folders (None: NGINX's defaults, in a container).
        access_log: Access log path (``/dev/stdout`` in a container).
        error_log: Error log path (``/dev/stderr`` in a container).
        daemon: False when a supervisor runs NGINX in the foreground.
        status_allow: Who may read ``stub_status`` besides 127.0.0.1 (the exporter's network
            in a container); empty: loopback only.
        generation: A number the status server answers at ``/generation``: after a reload,
            the deploy polls it to know that NGINX's workers run the new config.
    """

    listen: str
    status_listen: str
    prefix: str | None
    access_log: str
    error_log: str
    daemon: bool = False
    status_allow: tuple[str, ...] = ()
    generation: int = 0


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_nginx_conf(
    stack: StackConfig,
    upstreams: Sequence[str],
    layout: NginxLayout,
    *,
    latency_budget_seconds: float,
    max_body_bytes: int = 65_536,
) -> str:
    """The whole ``nginx.conf`` for ``upstreams`` (``host:port`` of each replica).

    Args:
        stack: Balancing, keepalive and timeouts.
        upstreams: The replicas NGINX balances over, in order.
        layout: Listen addresses and file locations.
        latency_budget_seconds: The API's latency budget (``Settings.latency_budget_seconds``).
        max_body_bytes: The largest request body NGINX passes on; the replicas refuse larger
            ones too (``Settings.max_request_body_bytes``).

    Raises:
        ValueError: No upstream.
    """
    if not upstreams:
        raise ValueError("NGINX needs at least one replica to balance over")
    read_timeout = stack.read_timeout_seconds(latency_budget_seconds)
    return render(
        "deploy",
        "nginx.conf.j2",
        stack=stack,
        upstreams=upstreams,
        layout=layout,
        max_body_bytes=max_body_bytes,
        read=_duration(read_timeout),
        # A replica restarting after a crash accepts connections before it answers: a request
        # sent to it waits the whole read timeout. The retry window leaves room for one more try
        # after that, so the client gets a late answer rather than a 504.
        retry_window=_duration(2 * read_timeout),
        connect=_duration(stack.connect_timeout_seconds),
        admin=_duration(stack.admin_timeout_seconds),
        # NGINX's temp folders, under the prefix when there is one (not /tmp).
        temp_paths=("client_body", "proxy", "fastcgi", "uwsgi", "scgi"),
        log_format="{" + ", ".join(f'"{k}": "{v}"' for k, v in ACCESS_LOG_FIELDS.items()) + "}",
        credential_query=CREDENTIAL_QUERY,
    )
