"""Training and registry commands, for the data scientist: ``train``, ``backtest``,
``promote``, ``rollback`` and ``models ...``.

These commands import their jobs when they run: mlflow and xgboost take seconds to import,
which `ingest` and `lake info` should not pay.
"""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from cli.console import err, fail, out, steps
from finsimples.settings import Settings

models_app = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)


def train(
    full: bool = typer.Option(
        True,
        "--full/--incremental",
        help="Refit from scratch, or update the champion with new data.",
    ),
) -> None:
    """Train a candidate, register it in MLflow and promote it if it passes the gate."""
    from jobs.common import JobError
    from jobs.train import train as train_job
    from training.metrics import LeakageError

    settings = Settings()
    with steps() as progress:
        task = progress.add_task("starting", total=None)
        try:
            outcome = train_job(
                settings,
                "full" if full else "incremental",
                step=lambda text: progress.update(task, description=text),
            )
        except (JobError, LeakageError) as exc:
            raise fail(str(exc)) from exc
    out.print(outcome.message, highlight=False)
    if outcome.verdict is not None and not outcome.verdict.passed:
        for reason in outcome.verdict.reasons:
            out.print(f"  - {reason}", highlight=False)


def backtest(
    start: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="First test date (default: settings.backtest_start)."
    ),
    update_months: int | None = typer.Option(
        None,
        min=1,
        help="Also update the model incrementally every N months between the yearly refits "
        "(what `train --incremental` does), to compare with refits alone.",
    ),
) -> None:
    """Walk-forward backtest of the model vs the baselines: prints the table, writes plots.

    Exits with status 1 when the leakage tripwire fires (results too good to be true).
    """
    from jobs.backtest import run
    from jobs.common import JobError

    settings = Settings()
    if update_months is not None:
        training = settings.training.model_copy(update={"update_months": update_months})
        settings = settings.model_copy(update={"training": training})
    with steps() as progress:
        task = progress.add_task("walk-forward backtest", total=None)
        try:
            result = run(
                settings,
                start.date() if start else None,
                step=lambda text: progress.update(task, description=text),
            )
        except JobError as exc:
            raise fail(str(exc)) from exc
    updates = settings.training.update_months
    title = f"walk-forward {result.span}, refit every {settings.training.refit_months} months"
    if updates:
        title += f", incremental update every {updates} months"
    table = Table(title=title, title_justify="left")
    for column in result.table.columns:
        table.add_column(str(column), justify="left" if column == "method" else "right")
    for row in result.table.itertuples(index=False):
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    # 13 columns: piped into a file or a log, don't squeeze them into 80 characters.
    (out if out.is_terminal else Console(width=200, soft_wrap=True)).print(table)
    out.print(f"report and plots: {result.report_dir}")
    if result.leakage:
        for line in result.leakage:
            err.print(f"[bold red]leakage tripwire:[/] {line}", highlight=False)
        raise typer.Exit(code=1)


@models_app.command("list")
def models_list() -> None:
    """Versions, aliases and key metrics; then each version's gate, median and DM evidence."""
    from jobs.common import open_registry
    from registry.gate import readable_evidence

    registry = open_registry(Settings())
    table = Table("version", "aliases", "mode", "watermark", "h1 coverage", "h1 pinball vs EWMA")
    details: list[str] = []
    aliases = registry.aliases()
    for version in registry.versions():
        run = registry.client.get_run(version.run_id) if version.run_id else None
        metrics = run.data.metrics if run else {}
        gain = metrics.get("h1_pinball_gain")
        table.add_row(
            str(version.version),
            ", ".join(aliases.get(str(version.version), [])),
            version.tags.get("training_mode", ""),
            version.tags.get("watermark", ""),
            f"{metrics['h1_coverage']:.3f}" if "h1_coverage" in metrics else "",
            f"{gain:+.2%}" if gain is not None else "",
        )
        # Long texts below the table, where a terminal's width does not cut them.
        facts = {
            "gate": version.tags.get("gate", ""),
            "median": version.tags.get("median", ""),
            "DM vs champion": readable_evidence(version.tags.get("gate.dm_vs_champion", "")),
            "features": version.tags.get("gate.features", ""),
        }
        shown = "; ".join(f"{name}: {text}" for name, text in facts.items() if text)
        if shown:
            details.append(f"v{version.version} {shown}")
    out.print(table)
    for line in details:
        out.print(line, highlight=False)


@models_app.command("history")
def models_history() -> None:
    """Promotions and rollbacks: who, when, why, from which version to which."""
    from jobs.common import open_registry

    table = Table("at", "action", "from", "to", "actor", "reason")
    for event in open_registry(Settings()).history():
        table.add_row(
            event.at.isoformat(timespec="seconds"),
            event.action,
            event.from_version or "-",
            event.to_version,
            event.actor,
            event.reason,
        )
    out.print(table)


SERVING_FOLLOWS = (
    "a running stack's deploy controller rolls the replicas to it (`finsimples deploy status`)"
)


def promote(
    version: str = typer.Argument(..., help="The model version to make champion."),
    force: bool = typer.Option(
        False, "--force", help="Required: a manual promotion goes around the gate."
    ),
    reason: str = typer.Option("", "--reason", help="Required: why, for the audit record."),
) -> None:
    """Make a version the champion by hand (needs --force and --reason)."""
    from jobs.common import open_registry
    from registry.promotion import PromotionError

    if not force or not reason.strip():
        raise fail("a manual promotion goes around the gate: pass --force and --reason TEXT")
    try:
        event = open_registry(Settings()).promote(version, reason=f"manual: {reason}")
    except PromotionError as exc:
        raise fail(str(exc)) from exc
    out.print(f"champion: v{event.from_version or '-'} -> v{event.to_version}")
    out.print(SERVING_FOLLOWS, highlight=False)


def rollback(
    reason: str = typer.Option("rollback", "--reason", help="Why, for the audit record."),
) -> None:
    """Give the champion alias back to the previous champion."""
    from jobs.common import open_registry
    from registry.promotion import PromotionError

    try:
        event = open_registry(Settings()).rollback(reason=reason)
    except PromotionError as exc:
        raise fail(str(exc)) from exc
    out.print(f"champion: v{event.from_version} -> v{event.to_version}")
    out.print(SERVING_FOLLOWS, highlight=False)
