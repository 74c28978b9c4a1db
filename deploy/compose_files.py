"""The files ``deploy/compose.yaml`` mounts that come from the settings.

NGINX's, Prometheus's and Alertmanager's configs.
The compose NGINX runs the local stack's renderer (:func:`deploy.nginx.render_nginx_conf`); only
the layout differs: replicas by service name, logs to the container's stdout/stderr, and
``stub_status`` readable from the small ``nginx-status`` network the exporter sits on.
Prometheus scrapes the replicas, the three exporters and Alertmanager, with the committed rules
(``monitoring/rules/``, mounted); Alertmanager's config is ``monitoring.alertmanager``'s, with the
webhook URL read from a compose secret (``url_file``). The files are committed, so a compose
host needs no Python; a test fails when they are stale.

Run ``python -m deploy.compose_files`` to rewrite them, ``--check`` to exit 1 when one differs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from config.monitoring import API_JOB, REDIS_JOB, REPLICA_LABEL
from config.stack import StackConfig
from deploy.nginx import NginxLayout, render_nginx_conf
from finsimples import generated
from finsimples.settings import Settings
from finsimples.templating import render
from monitoring.alertmanager import render_alertmanager_yml, timings

COMPOSE_DIR = Path(__file__).resolve().parent / "compose"
# The `nginx-status` network of compose.yaml (the test checks they agree): only NGINX, the
# exporter and Prometheus are on it, so only they may read stub_status. Outside Docker's
# default address pools (172.17-31.x, 192.168.x), so it cannot clash with a network Docker
# allocates by itself.
STATUS_SUBNET = "10.253.81.0/28"
# Inside the containers every server listens on its image's default port.
REPLICA_PORT = 3000  # BentoML
NGINX_LISTEN = "80"
EXPORTER_TARGET = "nginx-exporter:9113"
REDIS_EXPORTER_TARGET = "redis-exporter:9121"
NODE_EXPORTER_TARGET = "node-exporter:9100"
ALERTMANAGER_TARGET = "alertmanager:9093"
RULES_MOUNT = "/etc/prometheus/rules"  # compose.yaml mounts monitoring/rules/ here
WEBHOOK_URL_FILE = "/run/secrets/alertmanager_webhook_url"  # the compose secret
SCRAPE_INTERVAL = "15s"


def replica_services(stack: StackConfig) -> list[str]:
    """The compose service names of the replicas: ``replica-1`` .. ``replica-N``."""
    return [f"replica-{index}" for index in range(1, stack.replicas + 1)]


def render_compose_nginx_conf(
    stack: StackConfig, *, latency_budget_seconds: float, max_body_bytes: int
) -> str:
    """``nginx.conf`` for the compose NGINX: the local stack's config with a container layout."""
    layout = NginxLayout(
        listen=NGINX_LISTEN,
        status_listen=str(stack.nginx_status_port),
        prefix=None,
        access_log="/dev/stdout",
        error_log="/dev/stderr",
        daemon=False,
        status_allow=(STATUS_SUBNET,),
    )
    upstreams = [f"{name}:{REPLICA_PORT}" for name in replica_services(stack)]
    return render_nginx_conf(
        stack,
        upstreams,
        layout,
        latency_budget_seconds=latency_budget_seconds,
        max_body_bytes=max_body_bytes,
    )


def render_prometheus_yml(stack: StackConfig) -> str:
    """``prometheus.yml``: every replica's ``/metrics``, the exporters, Alertmanager, itself.

    Each replica is its own target group with a ``replica`` label (the value of its
    ``FINSIMPLES_REPLICA_ID``), so per-replica panels need no relabelling. Job names follow
    ``config.monitoring`` (the rules select on them), as the local stack's do.
    """
    return render(
        "deploy",
        "compose_prometheus.yml.j2",
        replicas=replica_services(stack),
        replica_port=REPLICA_PORT,
        replica_label=REPLICA_LABEL,
        scrape_interval=SCRAPE_INTERVAL,
        rules_mount=RULES_MOUNT,
        api_job=API_JOB,
        redis_job=REDIS_JOB,
        exporter_target=EXPORTER_TARGET,
        redis_exporter_target=REDIS_EXPORTER_TARGET,
        node_exporter_target=NODE_EXPORTER_TARGET,
        alertmanager_target=ALERTMANAGER_TARGET,
    )


def render_compose_alertmanager_yml(settings: Settings) -> str:
    """``alertmanager.yml``: ``monitoring.alertmanager``'s routes, the URL from the secret."""
    page, ticket = timings(settings.alerts)
    return render_alertmanager_yml(WEBHOOK_URL_FILE, url_file=True, page=page, ticket=ticket)


def render_all(settings: Settings) -> dict[str, str]:
    """Every generated file, by its name under ``deploy/compose/``."""
    stack = settings.stack
    return {
        "nginx.conf": render_compose_nginx_conf(
            stack,
            latency_budget_seconds=settings.latency_budget_seconds,
            max_body_bytes=settings.max_request_body_bytes,
        ),
        "prometheus.yml": render_prometheus_yml(stack),
        "alertmanager.yml": render_compose_alertmanager_yml(settings),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated files, or with ``--check`` report the stale ones (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m deploy.compose_files", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--dir", type=Path, default=COMPOSE_DIR, help="default: deploy/compose")
    args = parser.parse_args(argv)
    return generated.sync_files(
        render_all(Settings()), args.dir, check=args.check, command="python -m deploy.compose_files"
    )


if __name__ == "__main__":
    sys.exit(main())
