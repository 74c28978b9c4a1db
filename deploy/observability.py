"""The stack's monitoring programs: Prometheus, Alertmanager and three exporters.

Each runs when its Debian package is installed (``make system-deps``), and only with Prometheus:
nothing else would read an exporter or send Alertmanager an alert. Prometheus scrapes the
replicas (file_sd, rewritten by a deploy), the NGINX exporter (NGINX's ``stub_status``), the
Redis exporter (job ``redis``), the node exporter (the host), Alertmanager and itself; it loads
the alert rules the stack renders from the current settings (``monitoring.rules``) and sends
alerts to the stack's Alertmanager, which posts them to ``stack.alert_webhook_url``.

The programs' names and ``prometheus.yml`` itself come from ``monitoring.prometheus_conf``, so
that ``python -m monitoring.rules`` renders the committed ``monitoring/prometheus.yml`` without
importing this package.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from config.stack import StackConfig
from deploy.layout import StackLayout
from deploy.programs import find_binary
from deploy.supervisor import Program
from finsimples.settings import Settings
from monitoring.alertmanager import render_alertmanager_yml, timings
from monitoring.prometheus_conf import (
    ALERTMANAGER,
    BINARIES,
    NGINX_EXPORTER,
    NODE_EXPORTER,
    PROMETHEUS,
    REDIS_EXPORTER,
)

# The node exporter's collectors: CPU, memory, load, disks, network. The defaults add ~30 more
# (hardware, NFS, ZFS, ...), which a laptop or CI host does not need every 5 s.
NODE_COLLECTORS = (
    "cpu",
    "meminfo",
    "loadavg",
    "pressure",
    "filesystem",
    "diskstats",
    "netdev",
    "stat",
    "time",
    "uname",
)


def installed_programs() -> frozenset[str]:
    """The monitoring programs the stack runs: those installed, none without Prometheus."""
    found = {name for name, binary in BINARIES.items() if find_binary(binary) is not None}
    return frozenset(found) if PROMETHEUS in found else frozenset()


def monitoring_ports(stack: StackConfig, programs: Collection[str]) -> dict[str, int]:
    """The port of each monitoring program in ``programs``, by use."""
    ports = {
        PROMETHEUS: ("Prometheus", stack.prometheus_port),
        ALERTMANAGER: ("Alertmanager", stack.alertmanager_port),
        NGINX_EXPORTER: ("NGINX exporter", stack.nginx_exporter_port),
        REDIS_EXPORTER: ("Redis exporter", stack.redis_exporter_port),
        NODE_EXPORTER: ("node exporter", stack.node_exporter_port),
    }
    return dict(ports[name] for name in BINARIES if name in programs)


def monitoring_programs(
    settings: Settings, layout: StackLayout, programs: Collection[str]
) -> list[Program]:
    """The supervisord programs of ``programs`` (names from :data:`BINARIES`)."""
    stack = settings.stack
    host = stack.host
    logs = layout.logs

    def program(name: str, args: list[str], port: int, priority: int, folder: Path) -> Program:
        binary = find_binary(BINARIES[name]) or BINARIES[name]
        log = logs / f"{name}.log"
        return Program(name, [binary, *args], folder, log, port=port, priority=priority)

    prometheus_dir = layout.root / "prometheus"
    alertmanager_dir = layout.root / "alertmanager"
    built = {
        PROMETHEUS: program(
            PROMETHEUS,
            [
                f"--config.file={prometheus_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prometheus_dir / 'data'}",
                f"--web.listen-address={host}:{stack.prometheus_port}",
                "--storage.tsdb.retention.time=7d",
            ],
            stack.prometheus_port,
            200,
            prometheus_dir,
        ),
        ALERTMANAGER: program(
            ALERTMANAGER,
            [
                f"--config.file={alertmanager_dir / 'alertmanager.yml'}",
                f"--storage.path={alertmanager_dir / 'data'}",
                f"--web.listen-address={host}:{stack.alertmanager_port}",
                "--cluster.listen-address=",  # one Alertmanager: no gossip port
            ],
            stack.alertmanager_port,
            150,
            alertmanager_dir,
        ),
        NGINX_EXPORTER: program(
            NGINX_EXPORTER,
            [
                f"-nginx.scrape-uri=http://127.0.0.1:{stack.nginx_status_port}/stub_status",
                f"-web.listen-address={host}:{stack.nginx_exporter_port}",
                # It exits when stub_status does not answer at start; NGINX starts after the
                # replicas, so it waits for it.
                "-nginx.retries=120",
                "-nginx.retry-interval=1s",
            ],
            stack.nginx_exporter_port,
            450,
            logs,
        ),
        REDIS_EXPORTER: program(
            REDIS_EXPORTER,
            [
                f"-redis.addr=redis://{host}:{stack.redis_port}",
                f"-web.listen-address={host}:{stack.redis_exporter_port}",
            ],
            stack.redis_exporter_port,
            150,
            logs,
        ),
        NODE_EXPORTER: program(
            NODE_EXPORTER,
            [
                "--collector.disable-defaults",
                *(f"--collector.{name}" for name in NODE_COLLECTORS),
                f"--web.listen-address={host}:{stack.node_exporter_port}",
            ],
            stack.node_exporter_port,
            150,
            logs,
        ),
    }
    return [built[name] for name in BINARIES if name in programs]


def render_stack_alertmanager_conf(settings: Settings) -> str:
    """The stack's ``alertmanager.yml``: routes and timings from the settings, its webhook."""
    page, ticket = timings(settings.alerts)
    return render_alertmanager_yml(settings.stack.alert_webhook_url, page=page, ticket=ticket)
