"""``finsimples loadtest``: a thin command over ``loadtest.runner``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.console import err, out
from finsimples.settings import Settings
from loadtest.profiles import PROFILES
from loadtest.verdict import Verdict

EXIT_FAILED = 1
"""The verdict failed."""
EXIT_ERROR = 2
"""The load test could not run."""


def verdict_table(verdict: Verdict) -> Table:
    """The verdict as a table: line, measured, threshold, result."""
    table = Table("line", "measured", "threshold", "result", "note")
    marks = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[yellow]n/a[/]"}
    for line in verdict.lines:
        table.add_row(line.name, line.shown, line.rule, marks[line.passed], line.note)
    return table


def print_verdict(verdict: Verdict) -> None:
    """The table, then each failed line and by how much."""
    out.print(verdict_table(verdict))
    if verdict.passed:
        out.print("[bold green]verdict: PASS[/]")
        return
    out.print("[bold red]verdict: FAIL[/]")
    for failure in verdict.failures:
        out.print(f"  - {failure}", markup=False, highlight=False)


def loadtest_command(
    profile: str = typer.Option(
        "ci", "--profile", help=f"Load shape: {', '.join(sorted(PROFILES))}."
    ),
    host: str | None = typer.Option(
        None, "--host", help="The API's URL (default: the running stack's NGINX)."
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=10, help="Seconds (soak: how long; seed/ci: a shorter run)."
    ),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="Report folder (default <state_dir>/reports/loadtest/...)."
    ),
    api_key: list[str] = typer.Option(
        [], "--api-key", help="API key the investors send (repeat for several; default: settings)."
    ),
    seed: int = typer.Option(0, "--seed", help="Ticker popularity order and draws."),
) -> None:
    """Run the plan's Locust load test headless and print its SLA verdict.

    Exits 0 when every line passes, 1 when one fails (each failure says by how much), 2 when
    the test could not run (nothing at the host, Locust failed).
    """
    from loadtest.runner import LoadTestError, run_loadtest

    if profile not in PROFILES:
        err.print(f"[bold red]error:[/] unknown profile {profile!r}: one of {sorted(PROFILES)}")
        raise typer.Exit(EXIT_ERROR)
    settings = Settings()
    try:
        run = run_loadtest(
            settings,
            profile,
            host=host,
            folder=report_dir,
            duration=duration,
            keys=api_key or None,
            seed=seed,
            progress=lambda line: out.print(line, markup=False, highlight=False),
        )
    except LoadTestError as exc:
        err.print("[bold red]error:[/]", end=" ")
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from exc
    summary = run.summary
    latency = summary["latency_seconds"]
    out.print(
        f"{summary['requests']} requests in {summary['seconds']:.0f} s "
        f"({summary['requests_per_second']:.1f} req/s); p50 {latency['p50']:.3f} s, "
        f"p95 {latency['p95']:.3f} s, p99 {latency['p99']:.3f} s",
        highlight=False,
    )
    for step in summary["steps"]:
        mark = "pass" if step["passed"] else "FAIL"
        out.print(
            f"  step {step['step']}: {step['users']} users, {step['rate']:.1f} req/s, "
            f"p95 {step['p95_seconds']:.3f} s, errors {step['error_rate']:.2%}: {mark}",
            highlight=False,
        )
    print_verdict(run.verdict)
    out.print(f"report: {run.folder}", highlight=False)
    if not run.verdict.passed:
        raise typer.Exit(EXIT_FAILED)
