"""``finsimples deploy``: thin commands over ``deploy.rolling`` and the deploy controller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cli.console import fail, out
from cli.stack import served_version
from deploy.preflight import StackError
from deploy.programs import CONTROLLER
from deploy.stack import Stack
from finsimples.settings import Settings

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
        table.add_row(slot.name, f"v{slot.model_version}", f"v{served_version(stack, slot)}")
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
