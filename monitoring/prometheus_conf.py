"""``prometheus.yml``: the scrape jobs of the stack's replicas, exporters and Alertmanager.

The names of the stack's monitoring programs (its supervisord programs, which
``deploy.observability`` builds) and the Prometheus config they share. Paths in
``prometheus.yml`` are relative to its folder (Prometheus resolves them so), which makes the
stack's file for the default settings the committed ``monitoring/prometheus.yml``.
"""

from __future__ import annotations

from collections.abc import Collection

from config.monitoring import API_JOB, CONTROLLER_JOB, REDIS_JOB, REPLICA_LABEL
from config.stack import StackConfig
from finsimples.templating import render

PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
NGINX_EXPORTER = "nginx-exporter"
REDIS_EXPORTER = "redis-exporter"
NODE_EXPORTER = "node-exporter"
# supervisord program -> its binary, which is also its Debian package's name.
BINARIES = {
    PROMETHEUS: "prometheus",
    ALERTMANAGER: "prometheus-alertmanager",
    NGINX_EXPORTER: "prometheus-nginx-exporter",
    REDIS_EXPORTER: "prometheus-redis-exporter",
    NODE_EXPORTER: "prometheus-node-exporter",
}
EVERY_PROGRAM = frozenset(BINARIES)
NGINX_JOB = "nginx"
NODE_JOB = "node"
SCRAPE_INTERVAL = "5s"
EVALUATION_INTERVAL = "15s"
TARGETS_FILE = "replicas.json"
RULES_DIR = "rules"


def render_prometheus_conf(stack: StackConfig, programs: Collection[str]) -> str:
    """``prometheus.yml`` for the stack: its scrape jobs, rules and Alertmanager.

    The replicas come from ``replicas.json`` (file_sd, labelled ``replica``), which a deploy
    rewrites when replicas move to new ports; Prometheus re-reads it by itself. The rules are
    the files under ``rules/``. Only the exporters and Alertmanager in ``programs`` appear.
    The config itself is ``monitoring/templates/prometheus.yml.j2``.
    """
    # The exporters and Alertmanager that run, then the deploy controller's /metrics.
    static_jobs = [
        (job, port)
        for name, job, port in (
            (NGINX_EXPORTER, NGINX_JOB, stack.nginx_exporter_port),
            (REDIS_EXPORTER, REDIS_JOB, stack.redis_exporter_port),
            (NODE_EXPORTER, NODE_JOB, stack.node_exporter_port),
            (ALERTMANAGER, ALERTMANAGER, stack.alertmanager_port),
        )
        if name in programs
    ]
    if stack.controller:
        static_jobs.append((CONTROLLER_JOB, stack.controller_port))
    return render(
        "monitoring",
        "prometheus.yml.j2",
        host=stack.host,
        scrape_interval=SCRAPE_INTERVAL,
        evaluation_interval=EVALUATION_INTERVAL,
        rules_dir=RULES_DIR,
        alertmanager_port=stack.alertmanager_port if ALERTMANAGER in programs else None,
        prometheus_job=PROMETHEUS,
        prometheus_port=stack.prometheus_port,
        api_job=API_JOB,
        replica_label=REPLICA_LABEL,
        targets_file=TARGETS_FILE,
        static_jobs=static_jobs,
    )
