"""``finsimples flows ...``: run one Prefect flow now, or serve them all on their schedules."""

from __future__ import annotations

from typing import Any

import typer

from cli.console import fail, out
from finsimples.settings import Settings

flows_app = typer.Typer(help="Prefect flows: run one now, or serve them on their schedules.")

FLOW_NAMES = ("daily", "ingest", "retrain", "deploy-hook", "drift", "track-record")


@flows_app.command("run")
def flows_run(
    name: str = typer.Argument(..., help=f"One of: {', '.join(FLOW_NAMES)}."),
    full: bool = typer.Option(False, "--full", help="daily, retrain: refit from scratch."),
    version: str | None = typer.Option(
        None, help="deploy-hook: the version deployed (default: the champion)."
    ),
    previous: str | None = typer.Option(None, help="deploy-hook: the version it replaced."),
    no_retrain: bool = typer.Option(
        False, "--no-retrain", help="drift: never start a retrain, even on drift."
    ),
) -> None:
    """Run one flow now, in this process (set PREFECT_API_URL to log it to a Prefect server)."""
    if name not in FLOW_NAMES:
        raise fail(f"unknown flow {name!r}: expected one of {', '.join(FLOW_NAMES)}")
    from flows.deployments import FLOWS

    settings = Settings()
    arguments: dict[str, object] = {}
    if name in ("daily", "retrain"):
        arguments["full"] = full
    elif name == "drift" and no_retrain:
        arguments["trigger_retrain"] = False
    elif name == "deploy-hook":
        if version is None:
            from jobs.common import open_registry

            champion = open_registry(settings).champion()
            if champion is None:
                raise fail("no champion to deploy: run `finsimples train --full` first")
            version = str(champion.version)
        arguments |= {"new_version": version, "old_version": previous}
    try:
        summary: Any = FLOWS[name](**arguments)
    except Exception as exc:  # the flow's state and traceback are in its logs
        raise fail(f"flow {name} failed: {exc}") from exc
    out.print(summary.message, highlight=False)


@flows_app.command("serve")
def flows_serve() -> None:
    """Serve every flow as a deployment; daily and drift run on their cron schedules."""
    from flows.deployments import daily_schedules, serve

    settings = Settings()
    if settings.daily_every_seconds is not None:
        daily = f"every {settings.daily_every_seconds:g} s (compressed market clock)"
    else:
        daily = ", ".join(
            f"{s.mic or 'daily'} {s.cron} ({s.timezone})" for s in daily_schedules(settings)
        )
    out.print(
        f"daily: {daily}; drift: {settings.drift_cron} ({settings.schedule_timezone}); "
        "Ctrl-C stops",
        highlight=False,
    )
    serve(settings)
