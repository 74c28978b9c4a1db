"""The NGINX, supervisord and Prometheus configs from Jinja2 templates, byte for byte.

The files under ``tests/data/configs/`` were written by the f-string renderers these templates
replaced, for the inputs of :data:`CASES`: a template that drifts by one space or newline fails
here, before ``nginx -t`` or supervisord's parser would notice (they ignore whitespace).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.stack import StackConfig
from deploy.compose_files import render_prometheus_yml
from deploy.nginx import NginxLayout, render_nginx_conf
from deploy.supervisor import Program, render_program, render_supervisord_conf
from monitoring.prometheus_conf import EVERY_PROGRAM, render_prometheus_conf

CONFIGS = Path(__file__).resolve().parents[2] / "data" / "configs"

_LOCAL = NginxLayout(
    listen="127.0.0.1:8080",
    status_listen="127.0.0.1:8081",
    prefix="/srv/state/stack",
    access_log="/srv/state/stack/logs/nginx-access.log",
    error_log="/srv/state/stack/logs/nginx-error.log",
    generation=7,
)
_COMPOSE = NginxLayout(
    listen="80",
    status_listen="8081",
    prefix=None,
    access_log="/dev/stdout",
    error_log="/dev/stderr",
    daemon=False,
    status_allow=("10.89.254.0/24",),
)
_DAEMON = NginxLayout(
    listen="0.0.0.0:80",
    status_listen="127.0.0.1:9113",
    prefix="/var/lib/fs 100%",
    access_log="/var/log/access.log",
    error_log="/var/log/error.log",
    daemon=True,
    status_allow=("10.0.0.0/8", "192.168.1.0/24"),
    generation=12345,
)

_REPLICA = Program(
    name="replica-1-p3001",
    command=["/usr/bin/env", "echo", "a b", "100%", "it's"],
    directory=Path("/srv/state/stack/replicas/replica-1"),
    log=Path("/srv/state/stack/logs/replica-1.log"),
    env={
        "BENTOML_HOME": "/srv/state/bentoml 50%",
        "QUOTED": 'say "hi" now',
        "APOS": "it's",
        "A_FIRST": "1",
    },
    port=3001,
    priority=300,
    startsecs=5,
    stopwaitsecs=30,
    stopsignal="INT",
)
_PLAIN = Program(
    name="nginx",
    command=["/usr/sbin/nginx", "-c", "/srv/state/stack/nginx.conf", "-g", "daemon off;"],
    directory=Path("/srv/state/stack"),
    log=Path("/srv/state/stack/logs/nginx.log"),
)

CASES: dict[str, Callable[[], str]] = {
    "nginx_local_least_conn.conf": lambda: render_nginx_conf(
        StackConfig(),
        ["127.0.0.1:3002", "127.0.0.1:3003", "127.0.0.1:3004"],
        _LOCAL,
        latency_budget_seconds=3.0,
        max_body_bytes=10_000,
    ),
    "nginx_compose_round_robin.conf": lambda: render_nginx_conf(
        StackConfig(balancing="round_robin"),
        ["replica-1:3000", "replica-2:3000"],
        _COMPOSE,
        latency_budget_seconds=2.5,
    ),
    "nginx_daemon_no_keepalive.conf": lambda: render_nginx_conf(
        StackConfig(upstream_keepalive=0, next_upstream_tries=1),
        ["10.0.0.5:3000"],
        _DAEMON,
        latency_budget_seconds=0.3333,
        max_body_bytes=1,
    ),
    "supervisord_two_programs.conf": lambda: render_supervisord_conf(
        Path("/srv/state/stack 100%"), [_REPLICA, _PLAIN]
    ),
    "supervisord_no_program.conf": lambda: render_supervisord_conf(Path("/srv/state"), []),
    "program_with_env.conf": lambda: render_program(_REPLICA),
    "program_plain.conf": lambda: render_program(_PLAIN),
    "compose_prometheus_1_replica.yml": lambda: render_prometheus_yml(StackConfig(replicas=1)),
    "compose_prometheus_5_replicas.yml": lambda: render_prometheus_yml(StackConfig(replicas=5)),
    "stack_prometheus_every_program.yml": lambda: render_prometheus_conf(
        StackConfig(host="127.0.0.2", controller=True), EVERY_PROGRAM
    ),
    "stack_prometheus_no_exporter.yml": lambda: render_prometheus_conf(
        StackConfig(controller=False), {"prometheus", "redis-exporter"}
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_config_is_byte_identical_to_the_f_string_renderers(name: str) -> None:
    assert CASES[name]() == (CONFIGS / name).read_text()


def test_an_undefined_template_variable_fails_instead_of_rendering_empty() -> None:
    from jinja2 import UndefinedError

    from finsimples.templating import render

    with pytest.raises(UndefinedError):
        render("deploy", "nginx.conf.j2")
