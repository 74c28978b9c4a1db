"""``finsimples stack ...``: thin commands over ``deploy.stack``."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import httpx
import typer
from rich.table import Table

from cli.console import fail, out
from deploy.layout import Slot
from deploy.preflight import StackError
from deploy.stack import Stack
from finsimples.redact import mask_url
from finsimples.settings import Settings
from monitoring.prometheus_conf import NGINX_EXPORTER, NODE_EXPORTER, REDIS_EXPORTER

stack_app = typer.Typer(
    help="The local production topology: Redis, MLflow, replicas behind NGINX, Prometheus, "
    "Alertmanager and exporters.",
    no_args_is_help=True,
)
EXPORTERS = (NGINX_EXPORTER, REDIS_EXPORTER, NODE_EXPORTER)


def print_urls(stack: Stack) -> None:
    """Where the stack serves."""
    urls = stack.urls
    out.print(f"API (through NGINX): {urls.api}   e.g. curl -s {urls.api}/v1/tickers")
    out.print(f"MLflow UI:           {mask_url(urls.mlflow)}")
    out.print(f"Redis:               {mask_url(urls.redis)}")
    if urls.prometheus:
        out.print(f"Prometheus:          {urls.prometheus}/targets")
    else:
        out.print("Prometheus:          not installed (make system-deps)")
    if urls.alertmanager:
        webhook = (
            stack.settings.stack.alert_webhook_url or "none (FINSIMPLES_STACK__ALERT_WEBHOOK_URL)"
        )
        out.print(f"Alertmanager:        {urls.alertmanager}   posts to: {webhook}")
    elif urls.prometheus:
        out.print("Alertmanager:        not installed (make system-deps)")
    missing = [name for name in EXPORTERS if name not in stack.monitoring]
    if urls.prometheus and missing:
        out.print(f"Exporters missing:   {', '.join(missing)} (make system-deps)")
    out.print(f"NGINX stub_status:   {urls.nginx_status}")
    if urls.prefect:
        out.print(f"Prefect UI:          {urls.prefect}   (daily flows and drift on schedule)")
    if urls.controller:
        out.print(f"Deploy controller:   {urls.controller}/healthz   (`finsimples deploy status`)")


@stack_app.command()
def up() -> None:
    """Start the stack (idempotent) and wait until every replica and NGINX answer."""
    stack = Stack.of(Settings())
    was_running = stack.running()
    started = time.monotonic()
    try:
        slots = stack.up(Path.cwd())
    except StackError as exc:
        raise fail(str(exc)) from exc
    what = "already running" if was_running else f"up in {time.monotonic() - started:.1f} s"
    versions = sorted({slot.model_version for slot in slots})
    out.print(
        f"stack {what}: {len(slots)} replicas serving model v{', v'.join(versions)} "
        f"(state in {stack.layout.root})"
    )
    print_urls(stack)


@stack_app.command()
def down() -> None:
    """Stop every process of the stack and free its ports."""
    stack = Stack.of(Settings())
    if not stack.running():
        out.print("no stack is running; nothing to stop")
        return
    try:
        leftover = stack.down()
    except StackError as exc:
        raise fail(str(exc)) from exc
    if leftover:
        raise fail("stopped, but ports are still taken: " + "; ".join(leftover))
    out.print("stack stopped; every port is free")


def served_version(stack: Stack, slot: Slot) -> str:
    """The model version a replica reports in its /metrics (``-`` when it does not answer)."""
    try:
        text = httpx.get(stack.replica_url(slot) + "/metrics", timeout=2.0).text
    except httpx.HTTPError:
        return "-"
    for line in text.splitlines():
        if line.startswith("finsimples_model_info{"):
            for part in line[line.index("{") + 1 : line.index("}")].split(","):
                key, _, value = part.partition("=")
                if key == "model_version":
                    return value.strip('"')
    return "?"


def uptime(started: float) -> str:
    """How long ago a process started, as 1h02m03s (``-`` when it never did)."""
    if not started:
        return "-"
    seconds = int(time.time() - started)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


@stack_app.command()
def status() -> None:
    """Each replica's model version, pid, uptime and readiness; the other processes' state."""
    stack = Stack.of(Settings())
    if not stack.running():
        raise fail("no stack is running: start it with `finsimples stack up`")
    infos = stack.processes()
    table = Table("replica", "program", "port", "model", "state", "pid", "uptime", "ready")
    slots = stack.layout.read_slots()
    for slot in slots:
        info = infos.get(slot.program)
        state = info.state if info else "absent"
        ready = "yes" if stack.replica_ready(slot) else "no"
        table.add_row(
            slot.name,
            slot.program,
            str(slot.port),
            f"v{served_version(stack, slot)}",
            state,
            str(info.pid) if info and info.pid else "-",
            uptime(info.started) if info and info.running else "-",
            ready,
        )
    out.print(table)
    others = Table("process", "state", "pid", "uptime")
    replica_programs = {slot.program for slot in slots}
    for name, info in sorted(infos.items()):
        if name not in replica_programs:
            others.add_row(name, info.state, str(info.pid or "-"), uptime(info.started))
    out.print(others)
    print_urls(stack)


@stack_app.command()
def logs(
    name: str | None = typer.Argument(
        None,
        help="A program (redis, nginx, mlflow, prometheus, alertmanager, nginx-exporter, "
        "redis-exporter, node-exporter) or replica (replica-1).",
    ),
    lines: int = typer.Option(40, "--lines", "-n", help="Lines from the end of each log."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Print the end of a program's log (every program's, without NAME)."""
    stack = Stack.of(Settings())
    by_slot = {slot.name: slot.program for slot in stack.layout.read_slots()}
    folder = stack.layout.logs
    if name is None:
        files = sorted(p for p in folder.glob("*.log") if p.name != "supervisord.log")
    else:
        log = folder / f"{by_slot.get(name, name)}.log"
        if not log.exists():
            known = sorted(p.stem for p in folder.glob("*.log"))
            raise fail(f"no log for {name!r} in {folder}; known: {', '.join(known) or 'none'}")
        files = [log]
    for log in files:
        if len(files) > 1:
            out.print(f"[bold]==> {log.name} <==[/]")
        with log.open(errors="replace") as handle:
            for line in deque(handle, maxlen=lines):
                out.print(line.rstrip("\n"), markup=False, highlight=False)
    if follow and len(files) == 1:
        with files[0].open(errors="replace") as handle:
            handle.seek(0, 2)
            while True:
                line = handle.readline()
                if line:
                    out.print(line.rstrip("\n"), markup=False, highlight=False)
                else:
                    time.sleep(0.5)
