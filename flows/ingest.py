"""The ingest flow: new price files in the drop location -> the lake.

Every pending file (prices, or a corporate events file: ``finsimples.events``) is fetched and
validated on its own; the valid ones are merged into the lake
in one commit (``finsimples.ingest.ingest_frames``) and only then moved to ``processed/``. A file
that fails validation goes to ``quarantine/`` with its error, and the others proceed. Should the
flow die between the commit and the moves, the next run ingests the same files again, which
changes nothing (ingest is idempotent), and moves them.

Another ingest may be reading the same drop location at the same time (the daily flows of two
exchanges fire in the same minute; every writer assumes another one is running). Both may
ingest a file they both listed, and the lake's MERGE makes the second a no-op; a file that is
gone by the time this run reads it was taken by the other run, which moves a file only after
its lake commit (or to ``quarantine/``): it is listed in ``taken`` and skipped. A file the
other run moved first once this one had merged it too is logged and counts as processed
(``finsimples.drop`` says what each drop location guarantees).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger

from finsimples.adjustment import JumpRule
from finsimples.drop import DropZone
from finsimples.events import is_events_file, read_events_file
from finsimples.ingest import (
    IngestError,
    IngestReport,
    ingest_frames,
    place_tickers,
    read_price_file,
)
from finsimples.lake import Lake
from finsimples.settings import Settings
from finsimples.tickers import Listing
from flows.io import compute_task, io_task, with_retries


@dataclass(frozen=True)
class IngestSummary:
    """What one run of the ingest flow did."""

    processed: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    report: IngestReport | None = None
    taken: list[str] = field(default_factory=list)
    """Files listed but gone before this run read them: another run ingested or quarantined
    them."""

    @property
    def message(self) -> str:
        """One line for logs and the CLI."""
        if not self.processed and not self.quarantined and not self.taken:
            return "no new files"
        parts = [f"{len(self.processed)} file(s) ingested"]
        if self.report is not None:
            parts.append(self.report.summary())
        if self.quarantined:
            parts.append(f"{len(self.quarantined)} quarantined: {', '.join(self.quarantined)}")
        if self.taken:
            parts.append(f"{len(self.taken)} taken by another run: {', '.join(self.taken)}")
        return "; ".join(parts)


@io_task
def list_pending(drop: DropZone) -> list[str]:
    """Names of the files waiting in the drop location."""
    return drop.pending()


@io_task
def fetch(drop: DropZone, name: str, folder: Path) -> Path | None:
    """A local copy of one pending file (None: another run took it meanwhile)."""
    return drop.fetch(name, folder)


@compute_task
def validate(path: Path, known: dict[str, Listing]) -> tuple[pd.DataFrame, dict[str, Listing]]:
    """Lake rows of one file and its tickers' listings, or an ``IngestError`` naming the file,
    row, column and value (an ambiguous ticker, a row on its exchange's holiday too)."""
    frame = read_price_file(path)
    return frame, place_tickers([frame], known)


@compute_task
def validate_events(path: Path) -> pd.DataFrame:
    """The corporate events of one events file, or an ``IngestError`` naming line and cell."""
    return read_events_file(path)


@io_task
def read_listings(lake: Lake) -> dict[str, Listing]:
    """The lake's tickers table."""
    return lake.listings()


@io_task
def write_lake(
    lake: Lake,
    frames: list[pd.DataFrame],
    source: str,
    listings: dict[str, Listing],
    events: pd.DataFrame | None = None,
    jump_rule: JumpRule | None = None,
) -> IngestReport:
    """Merge the valid files and their tickers into the lake in one atomic commit, then their
    corporate events (prices re-adjusted for them: ``finsimples.readjust``)."""
    return ingest_frames(
        lake, frames, source=source, listings=listings, events=events, jump_rule=jump_rule
    )


@io_task
def mark_processed(drop: DropZone, name: str) -> str | None:
    """Move an ingested file to ``processed/`` (None: another run moved it first)."""
    return drop.mark_processed(name)


@io_task
def quarantine(drop: DropZone, name: str, error: str) -> str | None:
    """Move a rejected file to ``quarantine/`` beside its error (None: another run did)."""
    return drop.quarantine(name, error)


def _explain_lake_failure(
    settings: Settings, lake: Lake, drop: DropZone, names: list[str], exc: OSError
) -> None:
    """Log, for operators, what a lake failure that outlasted the retries means for the data."""
    endpoint = settings.s3_endpoint_url if lake.uri.startswith("s3://") else None
    where = f"{lake.uri} (S3 API at {endpoint})" if endpoint else lake.uri
    get_run_logger().error(
        "the lake at %s failed after %d retries: %s; the lake keeps its last complete version "
        "and %s stay(s) in %s for the next run (ingest is idempotent)",
        where,
        settings.flow_io_retries,
        exc,
        ", ".join(names),
        drop.uri,
    )


@flow(name="ingest")
def ingest_flow() -> IngestSummary:
    """Take the drop location's new price files into the lake; quarantine the bad ones."""
    settings = Settings()
    log = get_run_logger()
    drop = DropZone.from_settings(settings)
    lake = Lake.from_settings(settings)
    names = with_retries(list_pending, settings)(drop)
    if not names:
        log.info("no new files at %s", drop.uri)
        return IngestSummary()
    valid: dict[str, pd.DataFrame] = {}
    events: dict[str, pd.DataFrame] = {}
    listings: dict[str, Listing] = {}
    rejected: dict[str, str] = {}
    taken: list[str] = []
    try:
        known = with_retries(read_listings, settings)(lake)
    except OSError as exc:
        _explain_lake_failure(settings, lake, drop, names, exc)
        raise
    with tempfile.TemporaryDirectory(prefix="finsimples-ingest-") as folder:
        for name in names:
            path = with_retries(fetch, settings)(drop, name, Path(folder))
            if path is None:
                log.info("%s was taken by another run (ingested or quarantined there)", name)
                taken.append(name)
                continue
            try:
                if is_events_file(path):
                    events[name] = validate_events(path)
                    continue
                valid[name], placed = validate(path, known)
                listings |= placed
            except IngestError as exc:
                log.warning("quarantining %s: %s", name, exc)
                rejected[name] = str(exc)
    report = None
    if valid or events:
        try:
            report = with_retries(write_lake, settings)(
                lake,
                list(valid.values()),
                ", ".join([*valid, *events]),
                listings,
                pd.concat(list(events.values()), ignore_index=True) if events else None,
                JumpRule.from_settings(settings),
            )
        except OSError as exc:
            _explain_lake_failure(settings, lake, drop, [*valid, *events], exc)
            raise
        log.info("lake at %s: %s", lake.uri, report.summary())
    for name in [*valid, *events]:
        if with_retries(mark_processed, settings)(drop, name) is None:
            log.info("%s was already moved to processed/ by another run", name)
    for name, error in rejected.items():
        if with_retries(quarantine, settings)(drop, name, error) is None:
            log.info("%s was already moved by another run", name)
    summary = IngestSummary(
        processed=[*valid, *events], quarantined=rejected, report=report, taken=taken
    )
    log.info("ingest: %s", summary.message)
    return summary
