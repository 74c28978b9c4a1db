"""The ``finsimples`` command line: a thin adapter over the core; settings are built here."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings.exceptions import SettingsError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.deploy import deploy_app, stack_app
from cli.loadtest import loadtest_command
from cli.monitoring import monitor_app
from finsimples.adjustment import JumpRule
from finsimples.environment import describe_settings_error
from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.migration import migrate
from finsimples.settings import Settings
from finsimples.tables import LakeError

app = typer.Typer(
    help="FinSimples: calibrated price-range forecasts. Data, training, registry and serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
lake_app = typer.Typer(
    help="Inspect and maintain the lake's Delta tables (prices, tickers, corrections).",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")
app.add_typer(stack_app, name="stack")
app.add_typer(deploy_app, name="deploy")
app.command("loadtest")(loadtest_command)
app.add_typer(monitor_app, name="monitor")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _lake() -> Lake:
    return Lake.from_settings(Settings())


def _fail(message: str) -> typer.Exit:
    err.print("[bold red]error:[/]", end=" ")
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code=1)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(
        ...,
        help="CSV (.csv, .csv.gz; ',' or Brazilian ';' with comma decimals), Parquet or B3 "
        "COTAHIST price files (.ZIP or .TXT), tickers reference files "
        "(ticker,exchange[,currency,name]) and corporate events files (ticker,ex_date,kind,value).",
    ),
    ticker: str | None = typer.Option(
        None, help="Ticker of one-ticker OHLCV files (default: from the file name)."
    ),
    exchange: str | None = typer.Option(
        None, help="MIC every ticker of these files trades on: BVMF, XNYS or XNAS."
    ),
    currency: str | None = typer.Option(
        None, help="Currency of the prices, e.g. BRL or USD (default: the exchange's)."
    ),
    date_column: str | None = typer.Option(
        None, help="Header of the date column, when no column is named like a date."
    ),
    until: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Replay: ingest only rows dated on or before DATE."
    ),
    next_day: bool = typer.Option(
        False, "--next-day", help="Replay: ingest only the next trading day after the lake's data."
    ),
    date_format: str | None = typer.Option(
        None, help="strftime format of non-ISO dates, e.g. %d/%m/%Y."
    ),
) -> None:
    """Validate price files and merge them into the lake (idempotent; last write wins)."""
    settings = Settings()
    lake = Lake.from_settings(settings)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        # The bar moves by bytes read (files differ in size by orders of magnitude); once
        # every file is read and validated, the merge and the commit follow.
        sizes = {path: path.stat().st_size if path.is_file() else 0 for path in paths}
        task = progress.add_task("reading and validating", total=max(1, sum(sizes.values())))
        read = set()

        def file_read(path: Path) -> None:
            read.add(path)
            progress.advance(task, sizes.get(path, 0))
            if len(read) == len(sizes):
                progress.update(task, description="merging into the lake")

        try:
            report = ingest_files(
                lake,
                paths,
                ticker=ticker,
                until=until.date() if until else None,
                next_day=next_day,
                date_format=date_format,
                date_column=date_column,
                exchange=exchange,
                currency=currency,
                on_file=file_read,
                jump_rule=JumpRule.from_settings(settings),
            )
        except IngestError as exc:
            raise _fail(str(exc)) from exc
        except OSError as exc:
            raise _fail(f"lake {lake.uri}: {exc}; the lake was not changed") from exc
    out.print(report.summary(), highlight=False)


@lake_app.command("info")
def lake_info(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Tickers (exchange, currency, name), first and last date (the watermark), rows and files."""
    lake = _lake()
    try:
        snapshot = lake.snapshot()
        listings = lake.listings(snapshot)
    except OSError as exc:
        raise _fail(f"lake {lake.uri}: {exc}") from exc
    if as_json:
        body = {
            "uri": lake.uri,
            "version": snapshot.version,
            "files": snapshot.files,
            "rows": snapshot.rows,
            "tickers": {
                t: {"first": s.first.isoformat(), "last": s.last.isoformat(), "rows": s.rows}
                | (
                    {k: v for k, v in vars(listings[t]).items() if k != "ticker"}
                    if t in listings
                    else {}
                )
                for t, s in snapshot.tickers.items()
            },
            "listings": {t: vars(v) for t, v in listings.items()},
        }
        out.print_json(json.dumps(body))
        return
    table = Table(
        title=f"lake {lake.uri} - version {snapshot.version}, {snapshot.files} files, "
        f"{snapshot.rows:,} rows",
        title_justify="left",
    )
    # Names are in --json: the table stays within 80 columns.
    for column in ("ticker", "exchange", "currency", "first date", "last date (watermark)"):
        table.add_column(column)
    table.add_column("rows", justify="right")
    for ticker, stats in snapshot.tickers.items():
        listing = listings.get(ticker)
        table.add_row(
            ticker,
            listing.exchange if listing else "?",
            listing.currency if listing else "?",
            str(stats.first),
            str(stats.last),
            f"{stats.rows:,}",
        )
    if not snapshot.tickers:
        table.caption = "the lake is empty: run `finsimples ingest PATH`"
    out.print(table)


@lake_app.command("compact")
def lake_compact(
    year: list[int] | None = typer.Option(
        None, help="Years to merge (default: years holding many small files)."
    ),
) -> None:
    """Merge each year's data files into few large ones (Delta OPTIMIZE) and checkpoint."""
    result = _lake().compact(year or None)
    if result is None:
        out.print("nothing to compact")
        return
    out.print(
        f"merged {result.files_removed} files into {result.files_added}; "
        f"lake version {result.version}"
    )


@lake_app.command("vacuum")
def lake_vacuum(
    retention_hours: int | None = typer.Option(
        None,
        min=0,
        help="Keep the files versions younger than this need (default: from settings). A "
        "short retention deletes the files of writes still under way: use it only when none is.",
    ),
) -> None:
    """Delete files no version within the retention needs (and a migrated lake's old files)."""
    deleted = _lake().vacuum(retention_hours)
    out.print(f"deleted {len(deleted)} files")


@lake_app.command("migrate")
def lake_migrate() -> None:
    """Convert a lake of earlier FinSimples versions (manifests) to Delta tables, in place."""
    settings = Settings()
    try:
        report = migrate(settings)
    except LakeError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"lake {settings.resolved_lake_uri}: {exc}; nothing was migrated") from exc
    out.print(report.summary(), highlight=False)


@lake_app.command("history")
def lake_history() -> None:
    """The prices table's commits, with the rows each added or replaced."""
    table = Table("version", "committed at", "operation", "source", "new", "replaced", "unchanged")
    for commit in _lake().history():
        table.add_row(
            str(commit.version),
            commit.committed_at.isoformat(timespec="seconds"),
            commit.operation,
            commit.source,
            f"{commit.new:,}",
            f"{commit.replaced:,}",
            f"{commit.unchanged:,}",
        )
    out.print(table)


# --- API keys -----------------------------------------------------------------------------------
api_key_app = typer.Typer(help="API keys: mint one, keep only its hash.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")


@api_key_app.command("new")
def api_key_new(
    admin: bool = typer.Option(
        False,
        "--admin",
        help="An admin key: the only kind the admin routes (/v1/admin/) accept, and refused "
        "on the client routes.",
    ),
) -> None:
    """Print a new random API key and its SHA-256; the key is shown once and stored nowhere."""
    from bentos.auth import ADMIN_KEY_PREFIX, KEY_PREFIX, generate_api_key

    key, digest = generate_api_key(ADMIN_KEY_PREFIX if admin else KEY_PREFIX)
    variable = "FINSIMPLES_ADMIN_KEY_HASHES" if admin else "FINSIMPLES_API_KEY_HASHES"
    holder = "the deploy (FINSIMPLES_DEPLOY_API_KEY) or the operator" if admin else "the client"
    out.print(f"key:    {key}", markup=False, highlight=False)
    out.print(f"sha256: {digest}", markup=False, highlight=False)
    err.print(
        f"Give the key to {holder}; put only the sha256 in {variable} (a JSON list, e.g. "
        f"'[\"{digest}\"]'), then restart the replicas.",
        markup=False,
        highlight=False,
    )


# --- training, registry, forecasts --------------------------------------------------------------
# These commands import their jobs when they run: mlflow and xgboost take seconds to import,
# which `ingest` and `lake info` should not pay.

models_app = typer.Typer(help="Registered model versions and their aliases.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _steps() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@app.command()
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
    with _steps() as progress:
        task = progress.add_task("starting", total=None)
        try:
            outcome = train_job(
                settings,
                "full" if full else "incremental",
                step=lambda text: progress.update(task, description=text),
            )
        except (JobError, LeakageError) as exc:
            raise _fail(str(exc)) from exc
    out.print(outcome.message, highlight=False)
    if outcome.verdict is not None and not outcome.verdict.passed:
        for reason in outcome.verdict.reasons:
            out.print(f"  - {reason}", highlight=False)


@app.command()
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
    with _steps() as progress:
        task = progress.add_task("walk-forward backtest", total=None)
        try:
            result = run(
                settings,
                start.date() if start else None,
                step=lambda text: progress.update(task, description=text),
            )
        except JobError as exc:
            raise _fail(str(exc)) from exc
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


@app.command()
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
        raise _fail("a manual promotion goes around the gate: pass --force and --reason TEXT")
    try:
        event = open_registry(Settings()).promote(version, reason=f"manual: {reason}")
    except PromotionError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"champion: v{event.from_version or '-'} -> v{event.to_version}")
    out.print(SERVING_FOLLOWS, highlight=False)


@app.command()
def rollback(
    reason: str = typer.Option("rollback", "--reason", help="Why, for the audit record."),
) -> None:
    """Give the champion alias back to the previous champion."""
    from jobs.common import open_registry
    from registry.promotion import PromotionError

    try:
        event = open_registry(Settings()).rollback(reason=reason)
    except PromotionError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"champion: v{event.from_version} -> v{event.to_version}")
    out.print(SERVING_FOLLOWS, highlight=False)


@app.command()
def predict(
    ticker: str = typer.Argument(..., help="Ticker, e.g. AAPL or PETR4."),
    horizon: int = typer.Option(5, "--horizon", "-h", help="Trading days ahead (1..30)."),
    as_json: bool = typer.Option(False, "--json", help="Print the forecast as JSON."),
    locale: str = typer.Option(
        "en", help="Number format of the table: en (US$ 131.85) or pt-BR (R$ 37,52)."
    ),
) -> None:
    """Forecast a ticker with the champion, locally (no server); dates are the sessions of the
    ticker's exchange, prices in its currency."""
    from finsimples.money import format_money
    from jobs.common import JobError
    from jobs.predict import predict as predict_job

    if locale not in ("en", "pt-BR"):
        raise _fail(f"--locale {locale!r}: expected en or pt-BR")

    try:
        forecast, version = predict_job(Settings(), ticker, horizon)
    except JobError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        out.print_json(forecast.model_dump_json())
        return
    lo, hi = sorted(forecast.path[0].prices, key=lambda k: float(k[1:]))[
        :: len(forecast.path[0].prices) - 1
    ]

    def money(value: float) -> str:
        return format_money(value, forecast.currency, locale)

    place = f" ({forecast.exchange}, {forecast.currency})" if forecast.exchange else ""
    table = Table(
        title=f"{forecast.ticker}{place}: last {money(forecast.last_price)} on "
        f"{forecast.as_of}; model v{version}; {forecast.interval:.0%} range",
        title_justify="left",
    )
    for column in ("day", "date", f"low ({lo})", "median", f"high ({hi})", "P(gain)"):
        table.add_column(column, justify="right")
    for point in forecast.path:
        table.add_row(
            str(point.day),
            str(point.date),
            money(point.prices[lo]),
            money(point.prices["q0.5"]),
            money(point.prices[hi]),
            f"{point.prob_gain:.0%}",
        )
    out.print(table)


# --- flows and the replay feed ------------------------------------------------------------------

flows_app = typer.Typer(help="Prefect flows: run one now, or serve them on their schedules.")
app.add_typer(flows_app, name="flows")
feed_app = typer.Typer(help="Replay a price file into the drop location, a day at a time.")
app.add_typer(feed_app, name="feed")

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
        raise _fail(f"unknown flow {name!r}: expected one of {', '.join(FLOW_NAMES)}")
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
                raise _fail("no champion to deploy: run `finsimples train --full` first")
            version = str(champion.version)
        arguments |= {"new_version": version, "old_version": previous}
    try:
        summary: Any = FLOWS[name](**arguments)
    except Exception as exc:  # the flow's state and traceback are in its logs
        raise _fail(f"flow {name} failed: {exc}") from exc
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


@feed_app.command("next-day")
def feed_next_day(
    source: Path = typer.Argument(
        Path("data/sp500_prices.csv.gz"), help="The price file to replay (default: the sample)."
    ),
) -> None:
    """Drop the next trading day of SOURCE (after the lake's data) as a file for the ingest flow."""
    from finsimples.drop import DropZone
    from finsimples.replay import next_day_file

    settings = Settings()
    try:
        day = next_day_file(source, Lake.from_settings(settings))
    except IngestError as exc:
        raise _fail(str(exc)) from exc
    if day is None:
        out.print(f"the lake already holds every day of {source}")
        return
    path = DropZone.from_settings(settings).put(day.name, day.data)
    out.print(f"{day.day}: {day.rows} rows -> {path}", highlight=False)


def main() -> None:
    """The ``finsimples`` command: :data:`app`, with bad settings told as what to fix.

    Every command builds its ``Settings`` from the environment and ``.env``; a misspelt or
    invalid ``FINSIMPLES_*`` variable then ends the command with exit code 2 and one line per
    problem (never a traceback, never a secret's value).
    """
    try:
        app()
    except LakeError as exc:  # an unmigrated lake, or a commit that kept losing its race
        err.print("[bold red]error:[/]", end=" ")
        err.print(str(exc), markup=False, highlight=False)
        sys.exit(1)
    except (ValidationError, SettingsError) as exc:
        if isinstance(exc, ValidationError) and exc.title != Settings.__name__:
            raise
        err.print("[bold red]error:[/] the settings are invalid:")
        err.print(describe_settings_error(exc, Settings), markup=False, highlight=False)
        sys.exit(2)
