"""The drift job: the champion against the lake's recent data; the report kept twice.

Inputs are read from the lake and the registry, the check itself is ``monitoring.drift``, and
the report (Evidently's HTML and a JSON summary) is written to the lake under
``reports/drift/`` and logged as a run of the monitoring experiment in MLflow. The champion's
version gets ``drift_detected`` and ``drift_report`` tags: the flag the deploy tooling and people
read. Last, ``status/drift.json`` (``finsimples.records.DriftStatus``) records the result for the
replicas' ``finsimples_drift_detected`` gauge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import pandas as pd

from finsimples.lake import Lake
from finsimples.settings import Settings
from jobs.common import load_champion, open_registry, read_training_prices
from jobs.status import record_drift
from monitoring.drift import DriftResult
from training.forecaster import QuantileForecaster

REPORTS_DIR = "reports/drift"


@dataclass(frozen=True)
class DriftInputs:
    """What the check compares: the lake's prices and the serving champion."""

    version: str
    prices: pd.DataFrame
    forecaster: QuantileForecaster


@dataclass(frozen=True)
class StoredDriftReport:
    """Where a drift report was kept."""

    version: str
    html_path: str
    json_path: str
    run_id: str


def load_drift_inputs(settings: Settings) -> DriftInputs:
    """The champion and every price in the lake.

    Raises:
        JobError: no champion yet, or an empty lake.
    """
    champion = load_champion(open_registry(settings))
    prices = read_training_prices(Lake.from_settings(settings))
    return DriftInputs(str(champion.version.version), prices, champion.forecaster)


def store_drift_report(
    settings: Settings, version: str, result: DriftResult, *, now: datetime | None = None
) -> StoredDriftReport:
    """Write the report to the lake, log it to MLflow and flag the champion's version."""
    checked_at = now or datetime.now(UTC)
    stamp = checked_at.strftime("%Y%m%dT%H%M%SZ")
    location = Lake.from_settings(settings).location
    base = location.path(REPORTS_DIR, result.current[1].isoformat(), f"{stamp}-v{version}")
    summary = json.dumps(result.summary, indent=2, default=str).encode()
    location.write_bytes(f"{base}.html", result.html.encode())
    location.write_bytes(f"{base}.json", summary)

    registry = open_registry(settings)
    mlflow.set_experiment(settings.monitoring_experiment_name)
    tags = {"model_version": version, "report": f"{base}.html", "check": "drift"}
    with mlflow.start_run(run_name=f"drift v{version} {result.current[1]}", tags=tags) as run:
        mlflow.log_metrics(result.metrics())
        mlflow.log_text(result.html, "drift/report.html")
        mlflow.log_text(summary.decode(), "drift/summary.json")
    flag = {"drift_detected": str(result.drift_detected).lower(), "drift_report": f"{base}.html"}
    for key, value in flag.items():
        registry.client.set_model_version_tag(settings.model_name, version, key, value)
    # Last: the replicas' drift gauge reads this small record, not the listing of reports.
    record_drift(
        settings,
        version=version,
        drift_detected=result.drift_detected,
        report=f"{base}.html",
        now=checked_at,
    )
    return StoredDriftReport(version, f"{base}.html", f"{base}.json", run.info.run_id)
