"""The stack's programs as supervisord runs them, built from the settings and the slots.

Every replica gets the same Redis, lake, MLflow and settings; its own port, ``BENTOML_HOME``
(its pinned model, see ``StackLayout.pin_model``), fallback snapshot and replica name.
Other settings (API key hashes, the narrator's endpoint and key, budgets) reach the replicas
through supervisord's environment, which is the environment ``stack up`` ran in, and through
the ``.env`` file of the folder it ran in (the programs' working directory).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.layout import Slot, StackLayout
from deploy.supervisor import Program
from finsimples.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NGINX = "nginx"
REDIS = "redis"
MLFLOW = "mlflow"
PREFECT = "prefect-server"
RUNNER = "flows-runner"
CONTROLLER = "deploy-controller"

# Debian package of each system binary, for the error that says how to install it (the
# monitoring programs' binaries are named after their packages: monitoring/prometheus_conf.py).
APT_PACKAGES = {"redis-server": "redis-server", "nginx": "nginx"}


def find_binary(name: str) -> str | None:
    """The path of a system binary (PATH, then /usr/sbin where Debian puts nginx), or None."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if candidate.exists() else None


def venv_binary(name: str) -> str:
    """A console script of this project's environment (bentoml, mlflow, ...)."""
    return str(Path(sys.executable).with_name(name))


@dataclass(frozen=True)
class StackEndpoints:
    """The URLs the stack serves on."""

    api: str
    redis: str
    mlflow: str
    prometheus: str | None
    nginx_status: str
    alertmanager: str | None = None
    prefect: str | None = None
    controller: str | None = None


def endpoints(
    settings: Settings, with_prometheus: bool, with_alertmanager: bool = False
) -> StackEndpoints:
    """The stack's URLs from the settings."""
    stack = settings.stack
    host = stack.host
    return StackEndpoints(
        api=f"http://{host}:{stack.nginx_port}",
        redis=f"redis://{host}:{stack.redis_port}/0",
        mlflow=stack_mlflow_uri(settings),
        prometheus=f"http://{host}:{stack.prometheus_port}" if with_prometheus else None,
        nginx_status=f"http://127.0.0.1:{stack.nginx_status_port}/stub_status",
        alertmanager=f"http://{host}:{stack.alertmanager_port}" if with_alertmanager else None,
        prefect=prefect_url(settings) if stack.scheduler else None,
        controller=f"http://{host}:{stack.controller_port}" if stack.controller else None,
    )


def prefect_url(settings: Settings) -> str:
    """The stack's Prefect server (its UI; the API under ``/api``)."""
    return f"http://{settings.stack.host}:{settings.stack.prefect_port}"


def runs_mlflow(settings: Settings) -> bool:
    """The stack runs an MLflow server when the registry is a local sqlite store."""
    return settings.resolved_mlflow_tracking_uri.startswith("sqlite:")


def stack_mlflow_uri(settings: Settings) -> str:
    """The tracking URI the stack's processes use: its own server, or the configured one."""
    if runs_mlflow(settings):
        return f"http://{settings.stack.host}:{settings.stack.mlflow_port}"
    return settings.resolved_mlflow_tracking_uri


def replica_program(settings: Settings, layout: StackLayout, slot: Slot, workdir: Path) -> Program:
    """The supervisord program of one replica."""
    stack = settings.stack
    home = layout.pin_model(slot.program, slot.model_tag)
    lake = settings.resolved_lake_uri
    if "://" not in lake:
        lake = str(Path(lake).resolve())
    env = {
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "OMP_WAIT_POLICY": "PASSIVE",
        "FINSIMPLES_STATE_DIR": str(settings.state_dir.resolve()),
        "FINSIMPLES_LAKE_URI": lake,
        "FINSIMPLES_MLFLOW_TRACKING_URI": stack_mlflow_uri(settings),
        "FINSIMPLES_REDIS_URL": endpoints(settings, False).redis,
        "FINSIMPLES_REPLICA_ID": slot.name,
        "FINSIMPLES_FALLBACK_SNAPSHOT_PATH": str(layout.snapshot(slot.model_version)),
        "FINSIMPLES_STACK__REPLICAS": str(stack.replicas),
        "PYTHONPATH": str(ROOT),
    }
    # Through deploy.replica, which first kills what a SIGKILLed predecessor left on the port.
    command = [
        sys.executable,
        *("-m", "deploy.replica", str(home), "--"),
        venv_binary("bentoml"),
        *("serve", "bentos.service:ForecastService", "--working-dir", str(ROOT)),
        *("--host", stack.host, "--port", str(slot.port)),
    ]
    return Program(
        name=slot.program,
        command=command,
        directory=workdir,
        log=layout.logs / f"{slot.program}.log",
        env=env,
        port=slot.port,
        priority=300,
        startsecs=5,
        stopwaitsecs=20,
    )


def service_programs(settings: Settings, layout: StackLayout, workdir: Path) -> list[Program]:
    """Redis, MLflow (for a sqlite registry) and NGINX (monitoring: ``deploy.observability``)."""
    stack = settings.stack
    logs = layout.logs
    redis_dir = layout.root / "redis"
    programs = [
        Program(
            name=REDIS,
            # A cache: no persistence, a memory bound, least recently used keys evicted.
            command=[
                find_binary("redis-server") or "redis-server",
                *("--bind", stack.host, "--port", str(stack.redis_port)),
                *("--dir", str(redis_dir), "--save", "", "--appendonly", "no"),
                *("--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"),
            ],
            directory=redis_dir,
            log=logs / "redis.log",
            port=stack.redis_port,
            priority=100,
        ),
        Program(
            name=NGINX,
            command=[
                find_binary("nginx") or "nginx",
                *("-p", str(layout.nginx_conf.parent), "-c", str(layout.nginx_conf)),
                *("-e", str(logs / "nginx-error.log")),
            ],
            directory=layout.nginx_conf.parent,
            log=logs / "nginx.log",
            port=stack.nginx_port,
            priority=400,
            stopsignal="QUIT",  # graceful: requests in flight finish
        ),
    ]
    if runs_mlflow(settings):
        artifacts = (settings.state_dir / "mlartifacts").resolve()
        programs.append(
            Program(
                name=MLFLOW,
                command=[
                    venv_binary("mlflow"),
                    *("server", "--host", stack.host, "--port", str(stack.mlflow_port)),
                    *("--backend-store-uri", settings.resolved_mlflow_tracking_uri),
                    *("--artifacts-destination", str(artifacts), "--workers", "1"),
                ],
                directory=workdir,
                log=logs / "mlflow.log",
                env={
                    # The job runner spawns workers of ~2.5 GB; this stack runs no MLflow jobs.
                    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                    # Registry webhooks wake the deploy controller: one key for every worker
                    # (else deliveries fail with InvalidToken), plain http to this host.
                    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": layout.webhook_encryption_key(),
                    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                    # The server caches its webhook list (60 s by default): a restarted
                    # controller's new secret is used within seconds, not a minute.
                    "MLFLOW_WEBHOOK_CACHE_TTL": "5",
                },
                port=stack.mlflow_port,
                priority=100,
                startsecs=3,
            )
        )
    return programs


def operations_programs(settings: Settings, layout: StackLayout, workdir: Path) -> list[Program]:
    """The programs that run the platform by itself: the Prefect server and the process serving
    the flows' deployments on their schedules (``stack.scheduler``), and the deploy controller
    (``stack.controller``)."""
    stack = settings.stack
    logs = layout.logs
    programs = []
    prefect_home = layout.root / "prefect"
    prefect_env = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_URL": prefect_url(settings) + "/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "OMP_WAIT_POLICY": "PASSIVE",
        "PYTHONPATH": str(ROOT),
    }
    if stack.scheduler:
        programs.append(
            Program(
                name=PREFECT,
                command=[
                    venv_binary("prefect"),
                    *("server", "start", "--host", stack.host, "--port", str(stack.prefect_port)),
                ],
                directory=workdir,
                log=logs / f"{PREFECT}.log",
                env={
                    **prefect_env,
                    # Leases of the model lock survive a server restart (flows.locks).
                    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
                        "prefect.server.concurrency.lease_storage.filesystem"
                    ),
                },
                port=stack.prefect_port,
                priority=150,
                startsecs=3,
                stopwaitsecs=20,
            )
        )
        programs.append(
            Program(
                name=RUNNER,
                # Waits for the server's health itself, then serves (flows.deployments.serve).
                command=[venv_binary("finsimples"), "flows", "serve"],
                directory=workdir,
                log=logs / f"{RUNNER}.log",
                env=prefect_env,
                priority=600,
                startsecs=5,
                stopwaitsecs=30,
            )
        )
    if stack.controller:
        env = {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
        if stack.scheduler:  # its deploys hold the model lock on the stack's Prefect server
            env |= prefect_env
        else:  # Prefect starts a temporary server for its deploy-hook runs: a home of its own
            env["PREFECT_HOME"] = str(layout.root / "prefect-controller")
            env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
            env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"  # 12-25 s idle
        programs.append(
            Program(
                name=CONTROLLER,
                command=[venv_binary("finsimples"), "deploy", "controller"],
                directory=workdir,
                log=logs / f"{CONTROLLER}.log",
                env=env,
                port=stack.controller_port,
                priority=700,
                startsecs=3,
                # A deploy cut short leaves the replicas mixed: the next controller finishes
                # it (level-triggered), so the stack's stop need not wait for it.
                stopwaitsecs=10,
            )
        )
    return programs
