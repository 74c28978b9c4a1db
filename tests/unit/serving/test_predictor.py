"""The predictor: serving features equal training features; refresh, errors, provenance."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bentos.predictor import (
    HorizonError,
    NotForecastableError,
    Predictor,
    UnknownTickerError,
)
from finsimples.calendars import calendar
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.records import HorizonRecord, TrackRecordSummary
from tests.champion import TICKERS, WATERMARK
from tests.unit.serving.conftest import INFO
from training.features import build_features
from training.forecaster import QuantileForecaster


def test_serving_features_equal_training_features(predictor: Predictor) -> None:
    # The predictor reads a recent window only; the model was trained on the full history.
    full = build_features(predictor.lake.read_prices())
    for ticker in TICKERS:
        trained = full.xs(ticker, level="ticker").iloc[-1]
        served = predictor._view.rows[ticker].iloc[0]
        np.testing.assert_allclose(served.to_numpy(), trained.to_numpy(), rtol=1e-9, atol=1e-12)


def test_forecast_path(predictor: Predictor) -> None:
    forecast = predictor.forecast("AAPL", 10)
    prices = predictor.lake.read_prices(tickers=["AAPL"])
    assert forecast.as_of == WATERMARK
    assert forecast.last_price == pytest.approx(prices["adj_close"].iloc[-1])
    assert [p.day for p in forecast.path] == list(range(1, 11))
    assert forecast.path[0].date == date(2022, 12, 1)
    for point in forecast.path:
        assert point.prices["q0.05"] < point.prices["q0.5"] < point.prices["q0.95"]
    assert forecast.interval == 0.9
    # Longer horizons, wider ranges; one model call serves every horizon of a ticker.
    width = lambda p: p.prices["q0.95"] - p.prices["q0.05"]  # noqa: E731
    assert width(forecast.path[-1]) > width(predictor.forecast("AAPL", 1).path[-1])
    assert set(predictor._view.forecasts) == {"AAPL"}


def test_unknown_ticker_carries_suggestions(predictor: Predictor) -> None:
    with pytest.raises(UnknownTickerError) as caught:
        predictor.forecast("KOO", 5)
    assert caught.value.suggestions == ["KO"]
    assert str(caught.value) == "unknown ticker 'KOO'; did you mean KO?"
    with pytest.raises(UnknownTickerError, match=r"^unknown ticker 'ZZZZZZ'$"):
        predictor.as_of("ZZZZZZ")


@pytest.mark.parametrize("horizon", [0, 31, -1])
def test_horizon_outside_the_model(predictor: Predictor, horizon: int) -> None:
    with pytest.raises(HorizonError, match=rf"horizon {horizon} is outside 1\.\.30"):
        predictor.forecast("KO", horizon)


def test_tickers_list_every_window(predictor: Predictor) -> None:
    windows = predictor.tickers()
    assert [w.ticker for w in windows] == sorted(TICKERS)
    assert all(w.forecastable and w.last_date == WATERMARK for w in windows)
    assert windows[0].first_date == date(2017, 1, 3)


def test_refresh_reads_a_new_lake_version(
    small_forecaster: QuantileForecaster, lake_copy: Lake, lake_dir: Path
) -> None:
    predictor = Predictor.load(small_forecaster, INFO, lake_copy)
    assert predictor.refresh() is False  # same version: nothing read
    before = predictor.forecast("KO", 5)
    ingest_files(lake_copy, [lake_dir.parent / "prices.csv"], next_day=True)
    assert predictor.refresh() is True
    after = predictor.forecast("KO", 5)
    assert (before.as_of, after.as_of) == (WATERMARK, date(2022, 12, 1))
    assert predictor.lake_version == lake_copy.snapshot().version


def test_short_history_is_not_forecastable(
    small_forecaster: QuantileForecaster, lake_copy: Lake, tmp_path: Path
) -> None:
    days = calendar("XNYS").sessions_window("2022-11-30", -60)  # ingest refuses holidays
    new = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Close": np.linspace(10, 12, 60)})
    new.to_csv(tmp_path / "NEWCO.csv", index=False)
    ingest_files(lake_copy, [tmp_path / "NEWCO.csv"], ticker="NEWCO", exchange="XNYS")
    predictor = Predictor.load(small_forecaster, INFO, lake_copy)
    assert {w.ticker: w.forecastable for w in predictor.tickers()}["NEWCO"] is False
    with pytest.raises(NotForecastableError, match="NEWCO has too little recent history"):
        predictor.forecast("NEWCO", 5)
    assert predictor.forecast("KO", 5).ticker == "KO"  # the others are unaffected


def test_a_model_of_other_features_is_refused(
    small_forecaster: QuantileForecaster, lake_copy: Lake
) -> None:
    other = copy.copy(small_forecaster)
    other.feature_version_ = "1999.1"
    with pytest.raises(ValueError, match=r"trained on features '1999\.1'"):
        Predictor(other, INFO, lake_copy)


def test_recent_coverage_is_the_realized_record_at_the_nearest_logged_horizon(
    predictor: Predictor,
) -> None:
    bare = Predictor(predictor.forecaster, INFO, predictor.lake)
    assert bare.recent_coverage(5) is None  # no realized record: the backtest is not quoted
    record = TrackRecordSummary(
        as_of=date(2022, 11, 30),
        window_days=63,
        window_start=date(2022, 9, 1),
        interval=0.9,
        horizons=(
            HorizonRecord(horizon=1, coverage=0.88, pinball=0.004, width=0.05, n=120),
            HorizonRecord(horizon=5, coverage=0.91, pinball=0.01, width=0.11, n=99),
        ),
    )
    bare.set_track_record(record, min_outcomes=100)
    assert bare.recent_coverage(1) == 0.88
    assert bare.recent_coverage(2) == 0.88  # nearer to 1 than to 5
    assert bare.recent_coverage(4) is None  # h=5 holds 99 < 100 outcomes
    bare.set_track_record(record, min_outcomes=50)
    assert bare.recent_coverage(30) == 0.91
    assert bare.track_record is record


def test_an_empty_lake_serves_nothing(small_forecaster: QuantileForecaster, tmp_path: Path) -> None:
    from finsimples.settings import Settings

    predictor = Predictor.load(
        small_forecaster, INFO, Lake.from_settings(Settings(lake_uri=str(tmp_path / "empty")))
    )
    assert predictor.tickers() == []
    with pytest.raises(UnknownTickerError):
        predictor.forecast("KO", 5)
