"""The flows as deployments (prefect.yaml, ``flows serve``) and from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.flows import load_flow_from_entrypoint
from prefect.settings import PREFECT_API_URL

from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from flows.deployments import FLOWS, ONE_DAILY_RUN, daily_schedules, deployments

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
FINSIMPLES = str(Path(sys.executable).with_name("finsimples"))


def test_daily_runs_after_each_exchange_close_and_drift_on_its_cron() -> None:
    made = {d.name: d for d in deployments(Settings())}
    assert set(made) == set(FLOWS) - {"daily"} | {"daily-bvmf", "daily-xnys"}
    [b3] = made["daily-bvmf"].schedules
    assert (b3.schedule.cron, b3.schedule.timezone) == ("30 18 * * 1-5", "America/Sao_Paulo")
    assert made["daily-bvmf"].parameters == {"exchange": "BVMF"}
    [nyse] = made["daily-xnys"].schedules
    assert (nyse.schedule.cron, nyse.schedule.timezone) == ("30 16 * * 1-5", "America/New_York")
    [drift] = made["drift"].schedules
    assert drift.schedule.cron == Settings().drift_cron
    assert made["retrain"].schedules == []


def test_a_compressed_market_clock_runs_each_daily_deployment_on_an_interval() -> None:
    made = {d.name: d for d in deployments(Settings(daily_every_seconds=15))}
    for name in ("daily-bvmf", "daily-xnys"):
        [timing] = made[name].schedules
        assert timing.schedule.interval == timedelta(seconds=15), name
        assert made[name].concurrency_limit == 1, name
        options = made[name].concurrency_options
        assert options is not None, name
        assert options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW, name
    [drift] = made["drift"].schedules  # drift keeps its cron
    assert drift.schedule.cron == Settings().drift_cron


def test_without_exchanges_daily_runs_on_the_settings_cron() -> None:
    settings = Settings(
        daily_exchanges=[], daily_cron="15 19 * * 1-5", schedule_timezone="America/New_York"
    )
    made = {d.name: d for d in deployments(settings)}
    [daily] = made["daily"].schedules
    assert (daily.schedule.cron, daily.schedule.timezone) == ("15 19 * * 1-5", "America/New_York")


def test_prefect_yaml_entrypoints_load_and_schedules_match_the_defaults() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    defaults = Settings()
    daily = {s.mic: (s.cron, s.timezone) for s in daily_schedules(defaults)}
    pools = set()
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        assert flow.name in FLOWS
        pools.add(deployment["work_pool"]["name"])
        function = deployment["entrypoint"].rsplit(":", 1)[1]
        for schedule in deployment.get("schedules", []):
            if function == "daily_flow":
                mic = deployment["parameters"]["exchange"]
                assert (schedule["cron"], schedule["timezone"]) == daily[mic]
                limit = deployment["concurrency_limit"]
                assert (limit["limit"], limit["collision_strategy"]) == (
                    ONE_DAILY_RUN.limit,
                    ONE_DAILY_RUN.collision_strategy.value,
                )
            else:
                assert (schedule["cron"], schedule["timezone"]) == (
                    defaults.drift_cron,
                    defaults.schedule_timezone,
                )
    assert pools == {"finsimples-local", "finsimples-k8s"}
    named = {d["name"] for d in spec["deployments"]}
    assert {f"daily-{mic.lower()}-local" for mic in daily} <= named


def test_feed_then_flows_run_from_the_command_line(tmp_path: Path, sample_path: Path) -> None:
    env = {
        **os.environ,
        "FINSIMPLES_STATE_DIR": str(tmp_path / "state"),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),  # the session's test server
    }
    ingest_files(
        Lake.from_settings(Settings(state_dir=tmp_path / "state")),
        [sample_path],
        until=date(2022, 11, 21),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [FINSIMPLES, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    fed = run("feed", "next-day", str(sample_path))
    assert fed.returncode == 0, fed.stderr
    assert fed.stdout.startswith("2022-11-22: 20 rows -> ")
    ran = run("flows", "run", "ingest")
    assert ran.returncode == 0, ran.stderr
    assert "1 file(s) ingested" in ran.stdout
    assert "20 new" in ran.stdout
    unknown = run("flows", "run", "weekly")
    assert unknown.returncode == 1
    assert "unknown flow 'weekly': expected one of daily, ingest" in unknown.stderr
    no_champion = run("flows", "run", "deploy-hook")
    assert no_champion.returncode == 1
    assert "no champion to deploy: run `finsimples train --full` first" in no_champion.stderr
