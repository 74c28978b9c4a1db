"""The daily flow, scheduled after the close: ingest the day's files, then retrain."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow, get_run_logger

from flows.ingest import IngestSummary, ingest_flow
from flows.retrain import RetrainSummary, retrain_flow


@dataclass(frozen=True)
class DailySummary:
    """What one day's run did."""

    ingest: IngestSummary
    retrain: RetrainSummary

    @property
    def message(self) -> str:
        """Two lines for logs and the CLI."""
        return f"ingest: {self.ingest.message}\nretrain: {self.retrain.message}"


@flow(name="daily")
def daily_flow(full: bool = False) -> DailySummary:
    """Ingest new price files, then retrain (incremental, or full on cadence or if asked).

    Args:
        full: make the retrain a full refit.
    """
    ingest = ingest_flow()
    retrain = retrain_flow(full=full)
    summary = DailySummary(ingest, retrain)
    get_run_logger().info(summary.message)
    return summary
