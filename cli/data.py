"""Data commands, for whoever feeds the lake: ``ingest``, ``lake ...`` and the replay ``feed``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.console import err, fail, out
from finsimples.adjustment import JumpRule
from finsimples.ingest import IngestError, ingest_files
from finsimples.lake import Lake
from finsimples.migration import migrate
from finsimples.settings import Settings
from finsimples.tables import LakeError

lake_app = typer.Typer(
    help="Inspect and maintain the lake's Delta tables (prices, tickers, corrections).",
    no_args_is_help=True,
)
feed_app = typer.Typer(help="Replay a price file into the drop location, a day at a time.")


def lake_of_settings() -> Lake:
    """The lake the settings name."""
    return Lake.from_settings(Settings())


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
            raise fail(str(exc)) from exc
        except OSError as exc:
            raise fail(f"lake {lake.uri}: {exc}; the lake was not changed") from exc
    out.print(report.summary(), highlight=False)


@lake_app.command("info")
def lake_info(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Tickers (exchange, currency, name), first and last date (the watermark), rows and files."""
    lake = lake_of_settings()
    try:
        snapshot = lake.snapshot()
        listings = lake.listings(snapshot)
    except OSError as exc:
        raise fail(f"lake {lake.uri}: {exc}") from exc
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
    result = lake_of_settings().compact(year or None)
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
    deleted = lake_of_settings().vacuum(retention_hours)
    out.print(f"deleted {len(deleted)} files")


@lake_app.command("migrate")
def lake_migrate() -> None:
    """Convert a lake of earlier FinSimples versions (manifests) to Delta tables, in place."""
    settings = Settings()
    try:
        report = migrate(settings)
    except LakeError as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"lake {settings.resolved_lake_uri}: {exc}; nothing was migrated") from exc
    out.print(report.summary(), highlight=False)


@lake_app.command("history")
def lake_history() -> None:
    """The prices table's commits, with the rows each added or replaced."""
    table = Table("version", "committed at", "operation", "source", "new", "replaced", "unchanged")
    for commit in lake_of_settings().history():
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
        raise fail(str(exc)) from exc
    if day is None:
        out.print(f"the lake already holds every day of {source}")
        return
    path = DropZone.from_settings(settings).put(day.name, day.data)
    out.print(f"{day.day}: {day.rows} rows -> {path}", highlight=False)
