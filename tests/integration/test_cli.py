"""The `finsimples` command as users run it: a subprocess, configured by environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finsimples.settings import Settings
from tests.conftest import s3_settings

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
FINSIMPLES = str(Path(sys.executable).with_name("finsimples"))


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FINSIMPLES, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def env_of(settings: Settings) -> dict[str, str]:
    """The lake's settings as the FINSIMPLES_* variables a user would export."""
    lake_fields = {f for f in Settings.model_fields if f.startswith(("lake_", "s3_"))}
    values = settings.model_dump(include=lake_fields, exclude_none=True)
    return {
        f"FINSIMPLES_{name.upper()}": str(getattr(value, "get_secret_value", lambda v=value: v)())
        for name, value in values.items()
    }


def test_ingest_replay_and_info(tmp_path: Path, sample_path: Path) -> None:
    env = {"FINSIMPLES_LAKE_URI": str(tmp_path / "lake")}
    first = run("ingest", "--until", "2022-12-20", str(sample_path), env=env)
    assert first.returncode == 0, first.stderr
    assert "166,160 new, 0 replaced, 0 unchanged; lake version 1" in first.stdout
    step = run("ingest", "--next-day", str(sample_path), env=env)
    assert "20 rows (2022-12-21 to 2022-12-21): 20 new" in step.stdout

    info = run("lake", "info", "--json", env=env)
    body = json.loads(info.stdout)
    assert body["version"] == 2
    assert body["rows"] == 166_180
    assert body["tickers"]["AAPL"] == {
        "first": "1990-01-02",
        "last": "2022-12-21",
        "rows": 8_309,
        "exchange": "XNAS",
        "currency": "USD",
        "name": "Apple Inc.",
        "timezone": "America/New_York",
        "share_kind": "",  # B3's ESPECI kind, from COTAHIST files only
    }
    assert body["listings"]["KO"]["exchange"] == "XNYS"
    table = run("lake", "info", env=env).stdout
    assert "AAPL" in table
    assert "XNAS" in table
    assert "2022-12-21" in table
    assert "last date (watermark)" in table


def test_bad_file_exits_nonzero_with_a_precise_message(tmp_path: Path) -> None:
    env = {"FINSIMPLES_LAKE_URI": str(tmp_path / "lake")}
    result = run("ingest", str(DATA / "bad" / "negative_price.csv"), env=env)
    assert result.returncode == 1
    assert "negative_price.csv, line 3, column 'AMD': value '-62.57': is not a positive price" in (
        result.stderr
    )
    assert not (tmp_path / "lake").exists()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    result = run("ingest", str(tmp_path / "nope.csv"), env={"FINSIMPLES_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "nope.csv: no such file" in result.stderr
    assert "nothing was written to the lake" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FINSIMPLES_LAKE_URI": "gs://nope"}, "FINSIMPLES_LAKE_URI='gs://nope': Value error"),
        (
            {"FINSIMPLES_LATENCY_BUDGET_SECONDS": "3s"},
            "FINSIMPLES_LATENCY_BUDGET_SECONDS='3s': Input should be a valid number",
        ),
        ({"FINSIMPLES_API_KEY_HASHES": "abc"}, "FINSIMPLES_API_KEY_HASHES: is not valid JSON"),
        (
            {"FINSIMPLES_REDIS_URL_": "redis://x"},
            "FINSIMPLES_REDIS_URL_ is not a FinSimples setting "
            "(did you mean FINSIMPLES_REDIS_URL?)",
        ),
    ],
)
def test_bad_settings_are_reported(env: dict[str, str], expected: str) -> None:
    result = run("lake", "info", env=env)
    assert result.returncode == 2, result.stderr
    assert "error: the settings are invalid:" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_against_the_s3_api_server(s3_endpoint: str) -> None:
    env = env_of(s3_settings(s3_endpoint))
    ingest = run("ingest", str(DATA / "formats" / "AAPL.csv"), env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert "5 new" in ingest.stdout
    info = json.loads(run("lake", "info", "--json", env=env).stdout)
    assert info["uri"].startswith("s3://")
    assert info["rows"] == 5


def test_the_data_scientists_loop(tmp_path: Path, sample_wide) -> None:  # type: ignore[no-untyped-def]
    """train, models list, promote (guarded), rollback, backtest: as users run them."""
    from tests.champion import LENIENT, SMALL, TICKERS

    prices = tmp_path / "prices.csv"
    sample_wide.loc[sample_wide["Date"] >= "2008-01-01", ["Date", *TICKERS]].to_csv(
        prices, index=False
    )
    env = {
        "FINSIMPLES_STATE_DIR": str(tmp_path / "state"),
        "FINSIMPLES_TRAINING": SMALL.model_dump_json(),
        "FINSIMPLES_GATE": LENIENT.model_dump_json(),
        "FINSIMPLES_GATE_TEST_YEARS": "1",
    }
    assert run("ingest", "--until", "2022-11-30", str(prices), env=env).returncode == 0
    trained = run("train", "--full", env=env)
    assert trained.returncode == 0, trained.stderr
    assert "version 1 is the new champion (gate passed)" in trained.stdout
    listed = run("models", "list", env=env).stdout
    assert "champion" in listed
    assert "2022-11-30" in listed

    refused = run("promote", "1", env=env)
    assert refused.returncode == 1
    assert "pass --force and --reason TEXT" in refused.stderr
    alone = run("rollback", env=env)
    assert alone.returncode == 1
    assert "no earlier champion to roll back to" in alone.stderr

    backtest = run("backtest", "--start", "2022-01-01", "--update-months", "3", env=env)
    assert backtest.returncode == 0, backtest.stderr
    assert "incremental update every 3 months" in backtest.stdout
    assert "model_aci" in backtest.stdout
    report = tmp_path / "state" / "reports" / "backtest-2022-11-30-update3m"
    assert (report / "summary.csv").is_file()
