"""The data scientist's loop on real data: ingest -> train -> register -> gate -> predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from config.gate import GatePolicy
from finsimples.calendars import calendar
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from jobs.common import JobError, load_version, open_registry
from jobs.predict import predict
from jobs.train import train
from tests.champion import LENIENT, SMALL, TICKERS, BiasedForecaster, break_updates
from tests.integration.registry.conftest import mlflow_server  # noqa: F401  (fixture)
from training.config import TrainingConfig
from training.forecaster import QuantileForecaster

pytestmark = pytest.mark.integration
# Six sample tickers from 2005, a small model (tests.champion.SMALL), a one-year gate backtest
# and the lenient gate of tests.champion: the tests are about the mechanism.


@pytest.fixture
def settings(tmp_path: Path, sample_wide: pd.DataFrame) -> Settings:
    subset = sample_wide.loc[sample_wide["Date"] >= "2005-01-01", ["Date", *TICKERS]]
    path = tmp_path / "prices.csv"
    subset.to_csv(path, index=False)
    settings = Settings(
        state_dir=tmp_path / "state", training=SMALL, gate=LENIENT, gate_test_years=1
    )
    ingest_files(Lake.from_settings(settings), [path], until=date(2022, 11, 30))
    return settings


def test_train_registers_promotes_and_predicts(settings: Settings) -> None:
    outcome = train(settings, "full")
    assert outcome.promoted, outcome.message
    registry = open_registry(settings)
    champion = registry.champion()
    assert champion is not None
    assert str(champion.version) == outcome.version
    assert champion.tags["watermark"] == "2022-11-30"
    assert champion.tags["gate"] == "passed"
    run = registry.client.get_run(champion.run_id)
    assert 0.7 < run.data.metrics["h1_coverage"] < 1.0
    assert "h1_pinball_ewma_normal" in run.data.metrics
    # how often the walk-forward's served paths needed the repair, per evaluated horizon
    shares = {h: run.data.metrics[f"h{h}_repaired_share"] for h in SMALL.eval_horizons}
    assert all(0.0 <= share <= 1.0 for share in shares.values())
    assert "- path repair (quantiles sorted, ranges widened" in champion.description
    assert run.data.params["mode"] == "full"
    assert run.data.tags["lake_version"] == "1"
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.name == "prices@lake-v1"
    # The run names the Delta table and version it read: the same rows come back from there.
    assert dataset.source_type == "delta_table"
    source = json.loads(dataset.source)
    lake = Lake.from_settings(settings)
    assert source == {"path": lake.prices.uri, "delta_table_version": 1}
    seen = DeltaTable(source["path"], version=source["delta_table_version"])
    assert seen.version() == 1
    assert (
        len(lake.read_prices(snapshot=lake.snapshot())) == json.loads(dataset.profile)["num_rows"]
    )

    forecast, version = predict(settings, "aapl", 10)
    assert version == outcome.version
    assert forecast.as_of == date(2022, 11, 30)
    assert len(forecast.path) == 10
    first, last = forecast.path[0], forecast.path[-1]
    assert first.date == date(2022, 12, 1)
    assert first.prices["q0.05"] < first.prices["q0.5"] < first.prices["q0.95"]
    width = lambda p: p.prices["q0.95"] - p.prices["q0.05"]  # noqa: E731
    assert width(last) > width(first)  # ranges widen with the horizon
    assert 0 < first.prob_gain < 1


def test_train_and_predict_against_an_mlflow_server_process(
    settings: Settings,
    mlflow_server: str,  # noqa: F811  (fixture)
) -> None:
    remote = settings.model_copy(update={"mlflow_tracking_uri": mlflow_server})
    outcome = train(remote, "full")
    assert outcome.promoted, outcome.message
    registry = open_registry(remote)
    champion = registry.champion()
    assert champion is not None
    assert str(champion.version) == outcome.version
    run = registry.client.get_run(champion.run_id)
    assert run.inputs.dataset_inputs[0].dataset.name == "prices@lake-v1"
    artifacts = {a.path for a in registry.client.list_artifacts(champion.run_id)}
    assert "model_card.md" in artifacts, artifacts
    # the model comes back from the server's artifact store
    forecast, version = predict(remote, "KO", 5)
    assert version == outcome.version
    assert len(forecast.path) == 5


def test_a_same_config_refit_passes_and_a_broken_refit_is_blocked_on_the_same_rows(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = train(settings, "full")
    assert first.promoted, first.message
    # the median policy is decided at training time and stored with the version
    registry = open_registry(settings)
    version = registry.get(first.version)  # type: ignore[arg-type]
    assert version.tags["median"].startswith(("zero-return baseline", "model"))
    assert "on the whole path" in version.tags["median"]
    run = registry.client.get_run(version.run_id)
    assert {"median_model", "median_vs_zero_p", "h1_dm_pinball_vs_ewma_normal_p"} <= set(
        run.data.metrics
    )
    assert "h1_median_model" not in run.data.metrics  # one decision, logged once

    # the features carry information: the model is worse with them permuted
    assert min(first.metrics[f"h{h}_features_dm_p"] for h in (1, 5)) < 0.025

    refit = train(settings, "full")  # same configuration, same data: identical forecasts
    assert refit.promoted, refit.message
    assert refit.metrics["h1_dm_pinball_vs_champion_identical"] == 1.0  # no test, no number
    assert "h1_dm_pinball_vs_champion_p" not in refit.metrics
    assert refit.metrics["champion_compared_on_folds"] == 0.0
    tags = registry.get(refit.version).tags  # type: ignore[arg-type]
    assert "h1 pinball identical to the champion: no test" in tags["gate.dm_vs_champion"]

    real_fit = QuantileForecaster.fit

    def broken_fit(self, features, prices, **engine):  # type: ignore[no-untyped-def]
        fitted = real_fit(self, features, prices, **engine)
        fitted.__class__ = BiasedForecaster
        return fitted

    monkeypatch.setattr(QuantileForecaster, "fit", broken_fit)
    broken = train(settings, "full")
    assert not broken.promoted
    assert broken.verdict is not None
    reasons = " ".join(broken.verdict.reasons)
    assert "h=1: pinball significantly worse than the champion's on the latest days" in reasons
    assert "significantly worse than EWMA-normal" in reasons
    assert str(registry.champion().version) == refit.version  # type: ignore[union-attr]
    assert str(registry.version_by_alias("challenger").version) == broken.version  # type: ignore[union-attr]
    assert registry.get(broken.version).tags["gate"].startswith("blocked: ")  # type: ignore[arg-type]

    registry.promote(broken.version, reason="manual: test", actor="ci")  # type: ignore[arg-type]
    registry.rollback(reason="drill", actor="ci")
    assert str(registry.champion().version) == refit.version  # type: ignore[union-attr]


def test_incremental_update_after_new_days(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(JobError, match="no champion to update"):
        train(settings, "incremental")
    train(settings, "full")
    nothing = train(settings, "incremental")
    assert nothing.version is None
    assert nothing.message == "nothing new since 2022-11-30"

    ingest_files(Lake.from_settings(settings), [tmp_path / "prices.csv"], next_day=True)
    updated = train(settings, "incremental")
    assert updated.version is not None
    registry = open_registry(settings)
    version = registry.get(updated.version)
    assert version.tags["training_mode"] == "incremental"
    assert version.tags["watermark"] == "2022-12-01"
    forecast, _ = predict(settings, "KO", 1)
    assert forecast.as_of == date(2022, 12, 1)
    # gated on the latest days, scored for the candidate and the champion on the same rows
    metrics = registry.client.get_run(version.run_id).data.metrics
    assert metrics["h1_recent_n"] == metrics["h1_recent_n_champion"] == len(TICKERS) * 125
    assert 0.7 < metrics["h1_recent_coverage"] < 1.0
    assert metrics["h1_recent_pinball"] <= metrics["h1_recent_pinball_champion"] * 1.01
    assert metrics["h1_dm_pinball_vs_champion_p"] >= 0.05


def test_an_incremental_candidate_identical_to_its_champion_reports_no_test(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identical losses are "no test" everywhere: metrics, tags, verdict, card, `models list`."""
    first = train(settings, "full")
    assert first.promoted, first.message
    # An update that changes nothing: every forecast, hence every loss, equals the champion's.
    monkeypatch.setattr(QuantileForecaster, "update", lambda self, features, prices, **_: self)
    ingest_files(Lake.from_settings(settings), [tmp_path / "prices.csv"], next_day=True)
    outcome = train(settings, "incremental")
    assert outcome.promoted, outcome.message
    for h in (1, 5):
        for loss in ("pinball", "ae"):
            name = f"h{h}_dm_{loss}_vs_champion"
            assert outcome.metrics[f"{name}_identical"] == 1.0
            assert name not in outcome.metrics
            assert f"{name}_p" not in outcome.metrics
    assert all(abs(v) < 1e5 for v in outcome.metrics.values()), "a clipped statistic leaked"

    registry = open_registry(settings)
    version = registry.get(outcome.version)  # type: ignore[arg-type]
    run = registry.client.get_run(version.run_id)
    assert "h1_dm_ae_vs_champion" not in run.data.metrics
    assert "h1 ae identical to the champion: no test" in version.tags["gate.dm_vs_champion"]
    assert "identical to the champion: no test" in version.tags["gate"]
    assert version.tags["gate"].startswith("passed (")
    card = version.description
    assert "- vs champion (DM, same rows): h1 pinball identical to the champion: no test" in card
    assert "-1000000" not in card
    assert "1e+06" not in card

    env = {"FINSIMPLES_STATE_DIR": str(settings.state_dir)}
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("finsimples")), "models", "list"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"v{outcome.version} " in listed
    assert "h1 ae identical to the champion: no test" in " ".join(listed.split())
    assert "-1000000" not in listed


def test_a_broken_incremental_update_is_registered_but_not_promoted(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = train(settings, "full")
    break_updates(monkeypatch)
    ingest_files(Lake.from_settings(settings), [tmp_path / "prices.csv"], next_day=True)
    outcome = train(settings, "incremental")
    assert not outcome.promoted
    assert outcome.verdict is not None
    reasons = " ".join(outcome.verdict.reasons)
    # (ACI's replay through the window largely restores coverage; the loss shows the bias)
    assert "h=1: pinball significantly worse than the champion's on the latest days" in reasons
    assert "h=5: pinball significantly worse than the champion's on the latest days" in reasons
    registry = open_registry(settings)
    assert str(registry.champion().version) == first.version  # type: ignore[union-attr]
    assert str(registry.version_by_alias("challenger").version) == outcome.version  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ticker", "horizon", "message"),
    [
        ("KOO", 5, "unknown ticker 'KOO'; did you mean KO?"),
        ("AAPL", 31, "horizon 31 is outside 1..30 trading days"),
        ("AAPL", 0, "horizon 0 is outside 1..30 trading days"),
        ("$$$", 5, "does not look like a ticker"),
    ],
)
def test_bad_predict_inputs(settings: Settings, ticker: str, horizon: int, message: str) -> None:
    with pytest.raises(JobError, match=message.replace("?", r"\?").replace(".", r"\.")):
        predict(settings, ticker, horizon)


def test_empty_lake_and_missing_champion_are_explained(tmp_path: Path, settings: Settings) -> None:
    empty = Settings(state_dir=tmp_path / "empty", training=SMALL)
    with pytest.raises(JobError, match="is empty: run `finsimples ingest PATH` first"):
        train(empty, "full")
    with pytest.raises(JobError, match="is empty: run `finsimples ingest PATH` first"):
        predict(empty, "AAPL", 5)
    # a lake, but nothing trained yet
    with pytest.raises(JobError, match="has no champion yet: run `finsimples train --full`"):
        predict(settings, "AAPL", 5)


def test_too_little_history_is_explained(tmp_path: Path, sample_wide: pd.DataFrame) -> None:
    path = tmp_path / "short.csv"
    sample_wide.loc[sample_wide["Date"] >= "2022-06-01", ["Date", "KO"]].to_csv(path, index=False)
    settings = Settings(state_dir=tmp_path / "short", training=SMALL)
    ingest_files(Lake.from_settings(settings), [path])
    with pytest.raises(JobError, match="too little price history"):
        train(settings, "full")


def test_predicting_a_ticker_with_too_little_history_is_explained(
    settings: Settings, tmp_path: Path
) -> None:
    train(settings, "full")
    path = tmp_path / "NEWCO.csv"  # listed three weeks before the lake's last day
    days = calendar("XNYS").sessions_in_range("2022-11-10", "2022-11-30")  # no Thanksgiving
    pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Close": 10.0, "Volume": 1000}).to_csv(
        path, index=False
    )
    ingest_files(Lake.from_settings(settings), [path], exchange="XNYS")
    with pytest.raises(JobError, match=f"NEWCO has {len(days)} recent prices; forecasts need"):
        predict(settings, "NEWCO", 5)


def test_a_model_trained_on_shuffled_feature_rows_is_blocked_by_the_feature_test(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pipeline bug: every fit (the walk-forward's and the final one) sees misaligned rows
    real_fit = QuantileForecaster.fit

    def shuffled_fit(self, features, prices, **engine):  # type: ignore[no-untyped-def]
        rows = np.random.default_rng(11).permutation(len(features))
        shuffled = pd.DataFrame(
            features.to_numpy()[rows], index=features.index, columns=features.columns
        )
        return real_fit(self, shuffled, prices, **engine)

    monkeypatch.setattr(QuantileForecaster, "fit", shuffled_fit)
    outcome = train(settings, "full")
    assert not outcome.promoted, outcome.message
    assert outcome.verdict is not None
    assert any(
        r.startswith("the features carry no information") for r in outcome.verdict.reasons
    ), outcome.verdict.reasons
    assert outcome.metrics["h5_features_dm_p"] >= 0.025
    tags = open_registry(settings).get(outcome.version).tags  # type: ignore[arg-type]
    assert "h5 permuted" in tags["gate.features"]


def test_first_model_on_a_new_lake_with_a_users_ticker_becomes_champion(
    settings: Settings, tmp_path: Path
) -> None:
    # a ninth-year-long user export: a realistic random walk (GBM with stochastic volatility)
    rng = np.random.default_rng(7)
    # NYSE sessions: ingest refuses rows on the exchange's holidays
    dates = calendar("XNYS").sessions_in_range("2013-12-02", "2022-11-30")
    vol = 0.018 * np.exp(np.cumsum(rng.normal(0, 0.03, len(dates))).clip(-1, 1))
    close = 25 * np.exp(np.cumsum(rng.normal(0.0002, 1, len(dates)) * vol))
    path = tmp_path / "MYCO.csv"
    pd.DataFrame({"Date": dates, "Close": close.round(4)}).to_csv(path, index=False)
    ingest_files(Lake.from_settings(settings), [path], until=date(2022, 11, 30), exchange="XNYS")
    # the default significance levels; only coverage is relaxed for the small test model
    gate = GatePolicy(
        coverage_tolerance=0.1, min_worst_year_coverage=0.5, min_worst_ticker_coverage=0.5
    )
    outcome = train(settings.model_copy(update={"gate": gate}), "full")
    assert outcome.promoted, outcome.message
    # the median policy: when the model's median is not better than zero over the path, the
    # served median is the last close (a zero return) on every day, and the version says so
    registry = open_registry(settings)
    median = registry.get(outcome.version).tags["median"]  # type: ignore[arg-type]
    forecast, _ = predict(settings, "MYCO", 5)
    assert outcome.metrics["median_model"] == 0.0  # daily returns: no median beats zero
    assert median == (
        "zero-return baseline on the whole path (model's median not better than zero)"
    )
    for point in forecast.path:
        assert point.prices["q0.5"] == pytest.approx(forecast.last_price, rel=1e-6)
        assert point.prob_gain == pytest.approx(0.5, abs=1e-4)


def test_too_little_history_is_a_precise_reason(tmp_path: Path, sample_wide: pd.DataFrame) -> None:
    subset = sample_wide.loc[sample_wide["Date"] >= "2021-06-01", ["Date", *TICKERS]]
    path = tmp_path / "prices.csv"
    subset.to_csv(path, index=False)
    settings = Settings(state_dir=tmp_path / "state", training=SMALL, gate_test_years=1)
    ingest_files(Lake.from_settings(settings), [path], until=date(2022, 11, 30))
    with pytest.raises(JobError, match="too little history"):
        train(settings, "full")


@pytest.mark.parametrize(
    ("first", "last", "window"),
    [
        # 31 December: 2010-12 held 754 sessions (Sandy), 502 feature dates before the test
        # year, two short of a one-year window and a year of training
        ("2010-01-01", "2013-12-31", 250),
        # mid-year: half a test year, a whole year to calibrate
        ("2018-07-01", "2022-06-30", 252),
    ],
)
def test_a_first_train_on_four_years_of_history_is_judged_on_one_test_year(
    tmp_path: Path, sample_wide: pd.DataFrame, first: str, last: str, window: int
) -> None:
    """Four years of prices: the gate scales down and says so; nothing fails for history.

    The gate still judges: on 2010-13 the permuted features do as well as the real ones, so the
    candidate is blocked for that (a first model ends as a challenger), not for the history.
    """
    held = (sample_wide["Date"] >= first) & (sample_wide["Date"] <= last)
    subset = sample_wide.loc[held, ["Date", *TICKERS]]
    path = tmp_path / "prices.csv"
    subset.to_csv(path, index=False)
    # The default windows (calibration 504 days, two test years) with a small booster.
    config = TrainingConfig(booster=SMALL.booster)
    settings = Settings(state_dir=tmp_path / "state", training=config, gate=LENIENT)
    assert settings.gate_test_years == 2
    ingest_files(Lake.from_settings(settings), [path], until=date.fromisoformat(last))
    outcome = train(settings, "full")
    assert outcome.verdict is not None
    note = (
        "judged on 1 test year (gate_test_years=2: too little history), calibration window "
        f"{window} days instead of 504"
    )
    assert outcome.verdict.notes[0] == note
    assert not [r for r in outcome.verdict.reasons if "history" in r]
    assert outcome.promoted == (not outcome.verdict.reasons)
    assert outcome.promoted or "the features carry no information" in outcome.message
    assert 0.7 < outcome.metrics["h1_coverage"] < 1.0  # scored on the test year's rows
    version = open_registry(settings).get(outcome.version)  # type: ignore[arg-type]
    verdict = "passed" if outcome.promoted else "blocked"
    assert version.tags["gate"].startswith(verdict)
    assert version.tags["gate"].endswith(f"({note})")
    assert f"walk-forward, last 1 year ({note})" in version.description
    served = load_version(open_registry(settings), version).forecaster
    assert served.config.calibration_days == window  # judged as served
    assert served.as_of_ == pd.Timestamp(last)
