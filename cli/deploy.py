"""``finsimples stack ...`` and ``finsimples deploy``: thin commands over ``deploy.stack``."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from deploy.layout import Slot
from deploy.preflight import StackError
from deploy.programs import CONTROLLER
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
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print an error and return the exit to raise."""
    err.print("[bold red]error:[/]", end=" ")
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code=1)


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


def _served_version(stack: Stack, slot: Slot) -> str:
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


def _uptime(started: float) -> str:
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
            f"v{_served_version(stack, slot)}",
            state,
            str(info.pid) if info and info.pid else "-",
            _uptime(info.started) if info and info.running else "-",
            ready,
        )
    out.print(table)
    others = Table("process", "state", "pid", "uptime")
    replica_programs = {slot.program for slot in slots}
    for name, info in sorted(infos.items()):
        if name not in replica_programs:
            others.add_row(name, info.state, str(info.pid or "-"), _uptime(info.started))
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


deploy_app = typer.Typer(
    help="Deploys: roll a version onto the stack, the controller that makes the replicas "
    "follow @champion, and its status.",
)


@deploy_app.callback(invoke_without_command=True)
def deploy_command(
    ctx: typer.Context,
    version: str | None = typer.Option(
        None,
        "--version",
        help="Registry version to deploy (default: @champion); it becomes @champion first "
        "(an audited promotion), so the deploy controller keeps it.",
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Then run the load test's ci profile; when its verdict fails, roll back by itself.",
    ),
) -> None:
    """Rolling deploy of @champion (or --version N) onto the running stack, one replica at a time.

    Then the old version's answers leave Redis, the drift check runs and the deploy is recorded
    (the deploy-hook flow). With the stack's deploy controller running, moving @champion is
    enough (`finsimples promote`, `finsimples rollback`, MLflow's UI): the controller deploys
    it within seconds. This command does it now, and --version N also forces a version the
    controller holds after a failed verification. With --verify, the load test's verdict
    decides: on a failure the replicas and @champion go back to the previous version, the
    record says why, and the exit code is 1.
    """
    if ctx.invoked_subcommand is not None:
        return
    from deploy.preflight import require_champion
    from deploy.rolling import deploy_lock

    settings = Settings()
    stack = Stack.of(settings)
    if not stack.running():
        raise fail("no stack is running: start it with `finsimples stack up`")
    try:
        target = require_champion(settings, version)
    except StackError as exc:
        raise fail(str(exc)) from exc
    from flows.deploy_hook import deploy_hook_flow

    try:
        # Held from the alias move to the end, so the controller never deploys in between.
        with deploy_lock(stack.layout.deploy_lock):
            if version is not None:
                make_champion(settings, target)
            served = sorted({slot.model_version for slot in stack.layout.read_slots()})
            record = deploy_hook_flow(
                new_version=target, old_version=",".join(served) or None, verify=verify
            )
    except StackError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # the flow's logs hold the steps; the message says what failed
        raise fail(f"deploy of v{target} failed: {exc}") from exc
    if version is not None:
        forgive(stack, target, record.landed)
    print_rollout(record)
    if verify and record.verification is None:
        out.print(f"nothing to verify: v{target} was already serving", highlight=False)
    if not record.landed:
        undone = f"was rolled back to v{record.rolled_back_to}"
        if record.rollback_error:
            undone = f"its rollback to v{record.rolled_back_to} FAILED: {record.rollback_error}"
        raise fail(
            f"v{target} failed its load test and {undone}; deploy record: {record.record_path}"
        )


def make_champion(settings: Settings, version: str) -> None:
    """Move @champion to ``version`` unless it holds it already (an audited promotion)."""
    from jobs.common import open_registry
    from registry.promotion import current_actor

    registry = open_registry(settings)
    champion = registry.champion()
    if champion is None or str(champion.version) != version:
        registry.promote(version, reason=f"deploy --version {version} by {current_actor()}")
        out.print(f"@champion -> v{version}", highlight=False)


def forgive(stack: Stack, version: str, landed: bool) -> None:
    """A forced deploy that landed clears the controller's hold on that version."""
    from deploy.controller import ControllerState
    from deploy.reconcile import remember

    state = ControllerState(stack.layout.controller)
    memory = state.load()
    if landed and version in memory.failed:
        state.save(remember(memory, version, landed=True))
        state.record("forced", version=version, reason="finsimples deploy --version")


def print_rollout(record: Any) -> None:
    """The deploy hook's record as the CLI shows it: a table per replica, then its summary."""
    if record.rollout is not None:
        table = Table("replica", "old -> new", "start", "warm", "warmed", "switch", "drain")
        for step in record.rollout["replicas"]:
            table.add_row(
                step["replica"],
                f"{step['old_program']} -> {step['new_program']}",
                f"{step['start_seconds']:.1f} s",
                f"{step['warm_seconds']:.1f} s",
                str(step["warmed"]),
                f"{step['switch_seconds']:.2f} s",
                f"{step['drain_seconds']:.1f} s",
            )
        out.print(table)
    out.print(record.message, highlight=False)
    if record.verification is not None and record.verification.get("report"):
        out.print(f"load test report: {record.verification['report']}", highlight=False)


@deploy_app.command("status")
def deploy_status(
    entries: int = typer.Option(10, "--entries", "-n", min=1, help="Controller decisions shown."),
) -> None:
    """@champion against what each replica serves, and the deploy controller's last decisions."""
    from deploy.controller import ControllerState
    from deploy.reconcile import decide

    settings = Settings()
    stack = Stack.of(settings)
    from deploy.controller_run import observe_stack

    try:
        seen = observe_stack(settings)
    except Exception as exc:  # the registry is unreachable: say so, show the rest
        raise fail(f"cannot read @champion from the registry: {exc}") from exc
    state = ControllerState(stack.layout.controller)
    decision = decide(seen, state.load())
    out.print(f"@champion: v{seen.champion or '-'}", highlight=False)
    table = Table("replica", "recorded", "answers")
    for slot in stack.layout.read_slots():
        table.add_row(slot.name, f"v{slot.model_version}", f"v{_served_version(stack, slot)}")
    out.print(table)
    verdict = "in sync" if seen.in_sync else f"{decision.action}: {decision.reason}"
    out.print(f"state: {verdict}", highlight=False)
    infos = stack.processes() if stack.running() else {}
    controller = infos.get(CONTROLLER)
    out.print(
        f"controller: {controller.state if controller else 'not running'}"
        + (f" ({stack.urls.controller})" if controller and stack.urls.controller else ""),
        highlight=False,
    )
    memory = state.load()
    if memory.failed:
        for failed, why in memory.failed.items():
            out.print(f"held: v{failed}: {why}", highlight=False)
    recent = state.recent(entries)
    if recent:
        log = Table("at", "event", "version", "detail")
        for entry in recent:
            detail = next(
                (str(entry[k]) for k in ("reason", "message", "why", "error") if entry.get(k)),
                "",
            )
            log.add_row(entry["at"], entry["event"], f"v{entry.get('version') or '-'}", detail)
        out.print(log)


@deploy_app.command("controller")
def deploy_controller(
    target: str = typer.Option(
        "stack",
        "--target",
        help="stack: the local stack's replicas (supervisord runs it); kubernetes: the API "
        "Deployment of the cluster this pod runs in, under a Lease (deploy/k8s/README.md)",
    ),
) -> None:
    """Run the deploy controller in the foreground (the stack's supervisord runs it): the
    replicas follow @champion, on MLflow's webhook or every poll."""
    import logging
    import os

    from deploy.controller import ControllerBusyError
    from deploy.controller_run import run_controller

    if target not in ("stack", "kubernetes"):
        raise fail(f"--target is {target!r}; expected stack or kubernetes")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per poll drowns the decisions
    if target == "kubernetes":
        from deploy.controller_k8s import LeadershipLostError, run_kubernetes_controller
        from deploy.kube import KubeApiError
        from loadtest.runner import check_reachable, loadtest_verifier

        try:
            run_kubernetes_controller(
                Settings(), os.environ, verifier=loadtest_verifier, precheck=check_reachable
            )
        except (KubeApiError, LeadershipLostError) as exc:
            raise fail(str(exc)) from exc
        return
    from flows.deploy_hook import deploy_with_hook

    try:
        settings = Settings()
        run_controller(
            settings,
            Path.cwd(),
            deploy=lambda version, previous, verify: deploy_with_hook(
                settings, version, previous, verify
            ),
        )
    except ControllerBusyError as exc:
        raise fail(str(exc)) from exc
