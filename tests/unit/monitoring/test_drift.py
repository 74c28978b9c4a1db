"""The drift check on real prices: calm 2019 stretches, March-April 2020 and 2020 against 2019.

The champion is :data:`tests.champion.SMALL` fitted on six sample tickers through 2018 (its
calibration window is 2018). Each check runs Evidently once; the first pays its ~7 s import.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from config.monitoring import DriftConfig
from monitoring.drift import DriftResult, check_drift
from tests.champion import SMALL, TICKERS
from training.features import build_features
from training.forecaster import QuantileForecaster
from training.targets import build_targets

CALM_END = "2019-09-30"
# 450 reference days start in Sep 2017, before the champion's calibration window (2018).
CALM = DriftConfig(current_days=60, reference_days=450)
# Current = 2020-03-03..2020-04-30; h30 has only 12 days x 6 tickers of realized outcomes.
# The h5 coverage falls from .903 to .851 (.847 before the path repair widened the days whose
# range was narrower than an earlier day's, training.paths): 0.04 keeps the shock a clear alert.
SHOCK = DriftConfig(
    current_days=42, reference_days=252, horizons=(1, 5, 30), coverage_tolerance=0.04
)

# Importing Evidently warns about its own and litestar's deprecations: not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:evidently",
    "ignore::DeprecationWarning:litestar",
    "ignore:invalid escape sequence:DeprecationWarning",
)


def _until(prices: pd.DataFrame, day: str) -> pd.DataFrame:
    return prices.loc[prices["date"] <= day]


@pytest.fixture(scope="module")
def prices(sample_wide: pd.DataFrame) -> pd.DataFrame:
    """Six tickers' adjusted closes, 2014 through April 2020, long format."""
    rows = sample_wide.loc[sample_wide["Date"].between("2014-01-01", "2020-04-30")]
    long = rows[["Date", *TICKERS]].melt(id_vars="Date", var_name="ticker", value_name="adj_close")
    return long.dropna().rename(columns={"Date": "date"}).reset_index(drop=True)


@pytest.fixture(scope="module")
def champion(prices: pd.DataFrame) -> QuantileForecaster:
    train = _until(prices, "2018-12-31")
    return QuantileForecaster(SMALL).fit(build_features(train), train)


@pytest.fixture(scope="module")
def calm(prices: pd.DataFrame, champion: QuantileForecaster) -> DriftResult:
    return check_drift(_until(prices, CALM_END), champion, CALM)


@pytest.fixture(scope="module")
def shock(prices: pd.DataFrame, champion: QuantileForecaster) -> DriftResult:
    return check_drift(prices, champion, SHOCK)


def test_a_calm_stretch_raises_no_flag(calm: DriftResult) -> None:
    assert calm.reference == (date(2017, 9, 20), date(2019, 7, 5))
    assert calm.current == (date(2019, 7, 8), date(2019, 9, 30))
    assert not calm.dataset_drift
    assert calm.drifted_share < 0.25
    assert not calm.drift_detected
    assert calm.reasons == ()
    assert calm.notes == ()  # every horizon judged; the champion's data end before 'current'
    for h in CALM.horizons:
        check = calm.coverage[h]
        assert check.judged
        assert not check.alert
        assert abs(check.current.coverage - 0.9) <= CALM.coverage_tolerance
        # Every reference row is scored, those before the calibration window (CQR levels) too.
        assert check.reference.n == len(TICKERS) * CALM.reference_days


def test_march_2020_drifts_in_features_and_in_h5_coverage(shock: DriftResult) -> None:
    assert shock.current == (date(2020, 3, 3), date(2020, 4, 30))
    assert shock.dataset_drift
    assert shock.drifted_share >= SHOCK.drift_share
    assert {"ewma_vol", "mkt_vol", "rvol_21"} <= set(shock.drifted_columns)
    assert shock.feature_scores["mkt_vol"] > 5  # in reference stds
    assert {"h1_width", "h5_width"} <= set(shock.drifted_predictions)

    h5 = shock.coverage[5]
    assert h5.judged
    assert h5.alert
    assert h5.current.coverage < 0.9 - SHOCK.coverage_tolerance < h5.reference.coverage
    assert shock.drift_detected
    assert len(shock.reasons) == 2
    assert shock.reasons[0].startswith("feature drift: ")
    assert shock.reasons[1].startswith("h5 coverage 0.8")

    h30 = shock.coverage[30]
    assert h30.current.n == 12 * len(TICKERS) < SHOCK.min_outcomes
    assert not h30.judged
    assert not h30.alert
    assert shock.notes == (
        "h30 coverage not judged: 72 realized outcomes in the current window, fewer than "
        f"min_outcomes={SHOCK.min_outcomes}",
    )


@pytest.fixture(scope="module")
def prices_2019_2020(sample_wide: pd.DataFrame) -> pd.DataFrame:
    """The same six tickers through December 2020."""
    rows = sample_wide.loc[sample_wide["Date"].between("2014-01-01", "2020-12-31")]
    long = rows[["Date", *TICKERS]].melt(id_vars="Date", var_name="ticker", value_name="adj_close")
    return long.dropna().rename(columns={"Date": "date"}).reset_index(drop=True)


def test_2020_against_2019_is_flagged(
    prices_2019_2020: pd.DataFrame, champion: QuantileForecaster
) -> None:
    years = DriftConfig(current_days=253, reference_days=252)  # 2020's sessions vs 2019's
    result = check_drift(prices_2019_2020, champion, years)
    assert result.reference == (date(2019, 1, 2), date(2019, 12, 31))
    assert result.current == (date(2020, 1, 2), date(2020, 12, 31))
    assert result.dataset_drift
    assert result.drift_detected
    assert result.reasons[0].startswith("feature drift: ")
    assert "mkt_vol" in result.drifted_columns


def test_the_two_halves_of_calm_2019_do_not_drift(
    prices_2019_2020: pd.DataFrame, champion: QuantileForecaster
) -> None:
    halves = DriftConfig(current_days=126, reference_days=126)
    result = check_drift(_until(prices_2019_2020, "2019-12-31"), champion, halves)
    assert result.reference == (date(2019, 1, 2), date(2019, 7, 2))
    assert result.current == (date(2019, 7, 3), date(2019, 12, 31))
    assert not result.dataset_drift
    assert result.drifted_share < halves.drift_share
    assert not result.drift_detected
    assert result.reasons == ()


def test_coverage_and_residuals_match_a_hand_computation(
    calm: DriftResult, prices: pd.DataFrame, champion: QuantileForecaster
) -> None:
    window = _until(prices, CALM_END)
    start = pd.Timestamp(calm.current[0])
    forecasts = champion.predict_online(build_features(window), window, start=start)
    one_day = forecasts.xs(1, level="horizon")
    y = build_targets(window, 1)[1].reindex(one_day.index)
    known = y.notna().to_numpy()
    covered = ((y >= one_day[0.05]) & (y <= one_day[0.95])).to_numpy()[known]

    current = calm.coverage[1].current
    assert current.n == known.sum() == len(TICKERS) * (CALM.current_days - 1)
    assert current.coverage == pytest.approx(covered.mean())
    assert 0 < current.coverage < 1
    assert current.residual == pytest.approx((y - one_day[0.5]).to_numpy()[known].mean())
    assert current.width == pytest.approx((one_day[0.95] - one_day[0.05]).to_numpy()[known].mean())
    # The first row by hand: AAPL's next-day log return from the first current day.
    aapl = window.loc[window["ticker"] == "AAPL"].set_index("date")["adj_close"].loc[start:]
    outcome = float(np.log(aapl.iloc[1] / aapl.iloc[0]))
    lower, upper = one_day.loc[(start, "AAPL"), [0.05, 0.95]]
    assert y.loc[(start, "AAPL")] == pytest.approx(outcome)
    assert covered[0] == (lower <= outcome <= upper)


def test_metrics_are_flat_numbers_under_stable_names(shock: DriftResult) -> None:
    metrics = shock.metrics()
    per_horizon = {
        f"h{h}_{name}_{window}"
        for h in SHOCK.horizons
        for name in ("n", "coverage", "width", "residual", "pinball")
        for window in ("reference", "current")
    }
    assert set(metrics) == {
        "drift_detected",
        "dataset_drift",
        "drifted_share",
        "drifted_count",
        *(f"prediction_drift_h{h}_{k}" for h in SHOCK.horizons for k in ("median", "width")),
        *(f"h{h}_coverage_alert" for h in SHOCK.horizons),
        *per_horizon,
    }
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    assert metrics["drift_detected"] == 1.0
    assert metrics["h5_coverage_alert"] == 1.0
    assert metrics["h30_coverage_alert"] == 0.0
    assert metrics["drifted_count"] == len(shock.drifted_columns)
    assert metrics["h5_coverage_current"] == shock.coverage[5].current.coverage


def test_the_report_is_evidently_html_and_the_summary_is_json(
    calm: DriftResult, shock: DriftResult
) -> None:
    assert shock.html.lstrip().startswith("<!DOCTYPE html>")
    assert shock.html.rstrip().endswith("</html>")
    # Evidently's own verdict, rendered, agrees with ours.
    assert "Dataset Drift is detected" in shock.html
    assert "Dataset Drift is NOT detected" in calm.html
    assert "Wasserstein distance (normed)" in shock.html
    assert '"column_name": "mkt_vol"' in shock.html
    assert "Drift in column 'h5_width'" in shock.html

    summary = json.loads(json.dumps(shock.summary, allow_nan=False))
    assert summary["current"] == ["2020-03-03", "2020-04-30"]
    assert summary["drift_detected"] is True
    assert summary["coverage"]["5"]["alert"] is True
    assert summary["model"]["as_of"].startswith("2018-12-31")
    # Evidently's own count of drifted features agrees with the per-column tests we read.
    (count,) = [
        m["value"]
        for m in summary["evidently"]["metrics"]
        if m["config"]["type"].endswith(":DriftedColumnsCount")
    ]
    assert count["count"] == len(shock.drifted_columns)
    assert count["share"] == pytest.approx(shock.drifted_share)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"end": "2016-06-30"}, "too few trading days with features"),
        ({"config": DriftConfig(horizons=(45,))}, "must be a non-empty subset"),
        ({"config": DriftConfig(horizons=())}, "must be a non-empty subset"),
        ({"unfitted": True}, "not fitted"),
        ({"drop": "adj_close"}, "missing column"),
    ],
    ids=["too-short", "unknown-horizon", "no-horizon", "unfitted", "no-adj-close"],
)
def test_bad_input_is_refused_with_a_reason(
    prices: pd.DataFrame, champion: QuantileForecaster, change: dict, message: str
) -> None:
    window = _until(prices, change.get("end", CALM_END))
    if "drop" in change:
        window = window.drop(columns=change["drop"])
    forecaster = QuantileForecaster(SMALL) if change.get("unfitted") else champion
    with pytest.raises(ValueError, match=message):
        check_drift(window, forecaster, change.get("config", CALM))
