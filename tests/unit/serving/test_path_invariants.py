"""Every served path hangs together: property tests over random feature rows and champions.

The serving path is the predictor's: ``forecaster.predict(row)`` then ``make_forecast``, and the
narrative's facts per locale. For random feature rows (real rows of the lake, perturbed) and
random champions (the small real fit with random ACI levels and any median policy, including a
split decision pickled under the previous per-horizon policy), every day of the answer has
ordered quantiles, q95-q05 and q75-q25 never narrow from one day to the next, the median never
climbs then falls back, and P(gain) agrees with the median.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bentos.answers import facts_for
from bentos.predictor import Predictor
from finsimples.forecast import Forecast, make_forecast
from training.features import SIGMA_COLUMN, latest_features
from training.forecaster import QuantileForecaster

KEYS = ("q0.05", "q0.25", "q0.5", "q0.75", "q0.95")
PRICE_ROUNDING = 1e-4  # prices are served to 4 decimals, returns to 6
RETURN_ROUNDING = 1e-6
POLICIES = {
    "model": {},
    "zero": dict.fromkeys(range(1, 31), "zero"),
    "split (per-horizon, pickled before)": {
        h: "model" if h in (2, 3, 4) else "zero" for h in range(1, 31)
    },
}


def assert_path_hangs_together(forecast: Forecast) -> None:
    for field, tolerance in (("prices", PRICE_ROUNDING), ("returns", RETURN_ROUNDING)):
        grid = np.array([[getattr(p, field)[k] for k in KEYS] for p in forecast.path])
        assert (np.diff(grid, axis=1) >= -tolerance).all(), f"{field}: quantiles out of order"
        for lo, hi in ((0, 4), (1, 3)):
            width = grid[:, hi] - grid[:, lo]
            assert (np.diff(width) >= -2 * tolerance).all(), f"{field}: {KEYS[hi]}-{KEYS[lo]}"
        steps = np.diff(grid[:, 2])
        assert (steps >= -tolerance).all() or (steps <= tolerance).all(), "the median humps"
    for point in forecast.path:
        median = point.returns["q0.5"]
        if median > RETURN_ROUNDING:
            assert point.prob_gain >= 0.5
        elif median < -RETURN_ROUNDING:
            assert point.prob_gain <= 0.5


@pytest.fixture(scope="module")
def rows(lake_dir) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    from finsimples.lake import Lake
    from finsimples.settings import Settings
    from training.features import build_features

    prices = Lake.from_settings(Settings(lake_uri=str(lake_dir))).read_prices()
    return latest_features(build_features(prices))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    policy=st.sampled_from(sorted(POLICIES)),
    scale=st.floats(0.2, 5.0),
    noise=st.floats(0.0, 3.0),
    level_seed=st.integers(0, 2**32 - 1),
)
def test_every_served_path_hangs_together(
    small_forecaster: QuantileForecaster,
    predictor: Predictor,
    rows: pd.DataFrame,
    data: st.DataObject,
    policy: str,
    scale: float,
    noise: float,
    level_seed: int,
) -> None:
    rng = np.random.default_rng(level_seed)
    champion = copy.copy(small_forecaster)
    champion.median_sources_ = POLICIES[policy]
    # Any ACI state: each ticker's levels drawn anywhere in [0, 1], per anchor and interval,
    # so inner and outer intervals can cross and later anchors can be narrower than earlier.
    champion.aci_levels_ = {
        t: rng.uniform(0, 1, size=levels.shape)
        for t, levels in small_forecaster.aci_levels_.items()
    }
    ticker = data.draw(st.sampled_from(sorted(rows.index.get_level_values("ticker"))))
    row = rows.xs(ticker, level="ticker", drop_level=False).copy()
    # A feature row nobody saw: every feature moved by noise, the volatility rescaled.
    columns = [c for c in row.columns if c != SIGMA_COLUMN]
    row[columns] = (
        row[columns]
        + noise * rng.normal(size=len(columns)) * row[columns].abs().clip(lower=1e-3).to_numpy()
    )
    row[SIGMA_COLUMN] = row[SIGMA_COLUMN] * scale
    quantiles = champion.predict(row)
    forecast = make_forecast(
        quantiles, ticker=ticker, last_price=123.45, horizon=30, interval=0.9, listing=None
    )
    assert [p.day for p in forecast.path] == list(range(1, 31))
    assert_path_hangs_together(forecast)
    for locale in ("pt-BR", "en"):
        facts = facts_for(predictor, forecast, locale)
        assert facts.low_price <= facts.median_price <= facts.high_price
        # Issue 24 §3: at or above 50% when the median gains, at or below when it loses.
        gain = facts.median_price - facts.last_price
        if gain > PRICE_ROUNDING:
            assert facts.prob_gain >= 0.5, (gain, facts.prob_gain)
        elif gain < -PRICE_ROUNDING:
            assert facts.prob_gain <= 0.5, (gain, facts.prob_gain)


def test_the_demo_hump_is_gone(small_forecaster: QuantileForecaster, rows: pd.DataFrame) -> None:
    """The issue's path: a split decision (model at days 2-4, zero elsewhere) is served flat."""
    champion = copy.copy(small_forecaster)
    champion.median_sources_ = POLICIES["split (per-horizon, pickled before)"]
    forecast = make_forecast(
        champion.predict(rows.iloc[[0]]),
        ticker=str(rows.index[0][1]),
        last_price=100.0,
        horizon=10,
        interval=0.9,
    )
    assert {p.returns["q0.5"] for p in forecast.path} == {0.0}
    assert {round(p.prob_gain, 4) for p in forecast.path} == {0.5}
    assert_path_hangs_together(forecast)
