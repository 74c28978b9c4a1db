"""Fixtures of the flow tests: one Prefect test server for the session, a replayable world.

Flows build their settings from the environment, as they do when a deployment runs them, so a
test describes its world with ``FINSIMPLES_*`` variables (:func:`flow_environment`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from config.monitoring import DriftConfig
from finsimples.drop import DropZone
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.replay import DayFile, next_day_file
from finsimples.settings import Settings
from jobs.common import open_registry
from registry.promotion import ModelRegistry
from tests.champion import LENIENT, SMALL, TICKERS
from tests.integration.registry.conftest import mlflow_server  # noqa: F401  (fixture)
from tests.integration.serving.conftest import redis_server, redis_url  # noqa: F401  (fixtures)

START = date(2022, 11, 21)
"""The lake holds the sample up to this day; the replay starts the next trading day."""

SMALL_DRIFT = DriftConfig(current_days=20, reference_days=250, min_outcomes=20)


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect server (sqlite) for every flow test: it takes ~15 s to start."""
    home = tmp_path_factory.mktemp("prefect")
    patch = pytest.MonkeyPatch()
    patch.setenv("PREFECT_HOME", str(home))
    patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        yield
    patch.undo()


def flow_environment(monkeypatch: pytest.MonkeyPatch, **values: object) -> Settings:
    """Set ``FINSIMPLES_<NAME>`` for each value (models as JSON); the settings flows will see."""
    for name, value in values.items():
        if hasattr(value, "model_dump_json"):
            text = value.model_dump_json()
        elif isinstance(value, (list, dict)):
            text = json.dumps(value)
        else:
            text = str(value)
        monkeypatch.setenv(f"FINSIMPLES_{name.upper()}", text)
    return Settings()


@dataclass
class World:
    """A lake of six sample tickers up to :data:`START`, a drop location and the registry."""

    settings: Settings
    sample: Path

    @property
    def lake(self) -> Lake:
        return Lake.from_settings(self.settings)

    @property
    def drop(self) -> DropZone:
        return DropZone.from_settings(self.settings)

    @property
    def registry(self) -> ModelRegistry:
        return open_registry(self.settings)

    def last_date(self) -> date:
        return max(self.lake.watermarks().values())

    def drop_next_day(self) -> DayFile:
        """Put the sample's next trading day after the lake's data into the drop location."""
        day = next_day_file(self.sample, self.lake)
        assert day is not None
        self.drop.put(day.name, day.data)
        return day


def make_world(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sample_wide: pd.DataFrame,
    *,
    until: date = START,
    **overrides: object,
) -> World:
    """Flow settings for ``tmp_path`` (small model, lenient gate, quick retries); the lake.

    The lake gets the six tickers from 2005 to ``until``.
    """
    subset = sample_wide.loc[sample_wide["Date"] >= "2005-01-01", ["Date", *TICKERS]]
    sample = tmp_path / "sample.csv"
    subset.to_csv(sample, index=False)
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "training": SMALL,
        "gate": LENIENT,
        "gate_test_years": 1,
        "drift": SMALL_DRIFT,
        "drift_triggers_retrain": False,
        "flow_io_retries": 2,
        "flow_io_backoff_seconds": 0.1,
        "warm_tickers": 3,
        **overrides,
    }
    settings = flow_environment(monkeypatch, **values)
    world = World(settings, sample)
    ingest_files(world.lake, [sample], until=until)
    return world
