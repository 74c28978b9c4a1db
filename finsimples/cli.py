"""The ``finsimples`` command line: a thin adapter over the core; settings are built here."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings

app = typer.Typer(
    help="FinSimples: calibrated price-range forecasts. Data, training, registry and serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
lake_app = typer.Typer(help="Inspect and maintain the Parquet price lake.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")

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
    paths: list[Path] = typer.Argument(..., help="CSV (.csv, .csv.gz) or Parquet price files."),
    ticker: str | None = typer.Option(
        None, help="Ticker of one-ticker OHLCV files (default: from the file name)."
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
    lake = _lake()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("reading files", total=len(paths))
        try:
            report = ingest_files(
                lake,
                paths,
                ticker=ticker,
                until=until.date() if until else None,
                next_day=next_day,
                date_format=date_format,
                on_file=lambda _: progress.advance(task),
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
    """Tickers, first and last date (the watermark), rows and files of the lake."""
    lake = _lake()
    try:
        manifest = lake.manifest()
    except OSError as exc:
        raise _fail(f"lake {lake.uri}: {exc}") from exc
    if as_json:
        body = {
            "uri": lake.uri,
            "version": manifest.version,
            "files": len(manifest.files),
            "rows": manifest.rows,
            "tickers": {
                t: {"first": s.first.isoformat(), "last": s.last.isoformat(), "rows": s.rows}
                for t, s in manifest.tickers.items()
            },
        }
        out.print_json(json.dumps(body))
        return
    table = Table(
        title=f"lake {lake.uri} - version {manifest.version}, {len(manifest.files)} files, "
        f"{manifest.rows:,} rows",
        title_justify="left",
    )
    table.add_column("ticker")
    table.add_column("first date")
    table.add_column("last date (watermark)")
    table.add_column("rows", justify="right")
    for ticker, stats in manifest.tickers.items():
        table.add_row(ticker, str(stats.first), str(stats.last), f"{stats.rows:,}")
    if not manifest.tickers:
        table.caption = "the lake is empty: run `finsimples ingest PATH`"
    out.print(table)


@lake_app.command("compact")
def lake_compact(
    year: list[int] | None = typer.Option(
        None, help="Years to merge (default: years holding many small files)."
    ),
) -> None:
    """Merge each year's data files into one, so full reads open few files."""
    manifest = _lake().compact(year or None)
    if manifest is None:
        out.print("nothing to compact")
        return
    commit = manifest.commit
    assert commit is not None  # a compaction always records its commit
    out.print(
        f"merged {len(commit.removed)} files into {len(commit.added)}; "
        f"lake version {manifest.version}"
    )


@lake_app.command("vacuum")
def lake_vacuum(
    keep: int | None = typer.Option(None, help="Versions to keep (default: from settings)."),
) -> None:
    """Delete old versions and files no kept version uses. Run when no ingest is running."""
    settings = Settings()
    deleted = Lake.from_settings(settings).vacuum(keep or settings.lake_keep_versions)
    out.print(f"deleted {len(deleted)} files")


@lake_app.command("history")
def lake_history() -> None:
    """The commits of the kept versions, with the rows each added or replaced."""
    table = Table("committed at", "operation", "source", "new", "replaced", "unchanged")
    for commit in _lake().history():
        table.add_row(
            commit.committed_at.isoformat(timespec="seconds"),
            commit.operation,
            commit.source,
            f"{commit.new:,}",
            f"{commit.replaced:,}",
            f"{commit.unchanged:,}",
        )
    out.print(table)
