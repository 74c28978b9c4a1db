"""The track record's core on a case small enough to compute by hand."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from finsimples.track_record import (
    forecast_log,
    score_forecasts,
    summarize,
    summary_record,
    window_start,
)

D0, D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)
# BBB has no row on D1 (a holiday of its exchange, or a gap): its next trading day is D2.
PRICES = pd.DataFrame(
    {
        "ticker": ["AAA"] * 4 + ["BBB"] * 3,
        "date": pd.to_datetime([D0, D1, D2, D3, D0, D2, D3]),
        "adj_close": [100.0, 102.0, 99.0, 110.0, 50.0, 49.0, 55.0],
    }
)


def _log(as_of: date, ticker: str, horizon: int, last: float, q: tuple[float, ...]) -> dict:
    low, median, high = q
    return {
        "as_of": as_of,
        "ticker": ticker,
        "horizon": horizon,
        "model_version": "7",
        "due_date": as_of,
        "last_price": last,
        "low": low,
        "median": median,
        "high": high,
        "q0.05": low,
        "q0.5": median,
        "q0.95": high,
    }


LOGS = pd.DataFrame(
    [
        _log(D0, "AAA", 1, 100.0, (95.0, 100.0, 105.0)),  # target D1: 102, inside
        _log(D0, "AAA", 2, 100.0, (96.0, 101.0, 104.0)),  # target D2: 99, inside
        _log(D1, "AAA", 2, 102.0, (97.92, 102.0, 107.1)),  # target D3: 110, above
        _log(D0, "BBB", 1, 50.0, (47.5, 50.0, 52.5)),  # target D2 (its own next row): 49
        _log(D2, "BBB", 5, 49.0, (45.0, 49.0, 53.0)),  # not matured
    ]
)


def pinball(levels_and_ratios: list[tuple[float, float]], y: float) -> float:
    """By hand: mean over levels of max(t (y - q), (t - 1)(y - q))."""
    losses = [max(t * (y - q), (t - 1) * (y - q)) for t, q in levels_and_ratios]
    return sum(losses) / len(losses)


def test_scores_coverage_pinball_and_width_by_hand() -> None:
    scores = score_forecasts(LOGS, PRICES).set_index(["ticker", "as_of", "horizon"])

    assert len(scores) == 4  # BBB's 5-day forecast has not matured
    assert scores.loc[("BBB", D0, 1), "target_date"] == D2
    assert scores.loc[("AAA", D1, 2), "target_date"] == D3
    assert scores["covered"].to_dict() == {
        ("AAA", D0, 1): True,
        ("AAA", D0, 2): True,
        ("AAA", D1, 2): False,
        ("BBB", D0, 1): True,
    }
    # 1.02 against 0.95 / 1.00 / 1.05: (0.0035 + 0.01 + 0.0015) / 3
    assert scores.loc[("AAA", D0, 1), "pinball"] == pytest.approx(0.005)
    # 0.99 against 0.96 / 1.01 / 1.04: (0.0015 + 0.01 + 0.0025) / 3
    assert scores.loc[("AAA", D0, 2), "pinball"] == pytest.approx(0.014 / 3)
    y = 110 / 102  # against 0.96 / 1.00 / 1.05
    expected = (0.05 * (y - 0.96) + 0.5 * (y - 1.0) + 0.95 * (y - 1.05)) / 3
    assert scores.loc[("AAA", D1, 2), "pinball"] == pytest.approx(expected)
    assert expected == pytest.approx(pinball([(0.05, 0.96), (0.5, 1.0), (0.95, 1.05)], y))
    assert scores.loc[("BBB", D0, 1), "pinball"] == pytest.approx(0.005)
    assert scores["width"].to_dict() == pytest.approx(
        {
            ("AAA", D0, 1): 0.10,
            ("AAA", D0, 2): 0.08,
            ("AAA", D1, 2): 0.09,
            ("BBB", D0, 1): 0.10,
        }
    )


def test_summary_per_version_ticker_and_pooled_per_horizon() -> None:
    scores = score_forecasts(LOGS, PRICES)
    detail, pooled = summarize(scores, D0, D3)

    by_horizon = pooled.set_index("horizon")
    assert by_horizon["n"].to_dict() == {1: 2, 2: 2}
    assert by_horizon["coverage"].to_dict() == {1: 1.0, 2: 0.5}
    assert by_horizon.loc[2, "width"] == pytest.approx(0.085)
    y = 110 / 102
    h2_late = (0.05 * (y - 0.96) + 0.5 * (y - 1.0) + 0.95 * (y - 1.05)) / 3
    assert by_horizon.loc[2, "pinball"] == pytest.approx((0.014 / 3 + h2_late) / 2)
    aaa = detail.set_index(["model_version", "horizon", "ticker"])
    assert aaa.loc[("7", 1, "AAA"), "n"] == 1
    assert aaa.loc[("7", 2, "AAA"), "coverage"] == 0.5

    # A window starting at D3 keeps only the forecast that missed.
    _, late = summarize(scores, D3, D3)
    assert late.set_index("horizon")["coverage"].to_dict() == {2: 0.0}
    record = summary_record(late, as_of=D3, window_start=D3, window_days=1, interval=0.9)
    assert record["horizons"] == [
        {
            "horizon": 2,
            "coverage": 0.0,
            "pinball": pytest.approx(h2_late),
            "width": pytest.approx(0.09),
            "n": 1,
        }
    ]


def test_window_start_counts_trading_dates() -> None:
    days = [D0, D1, D2, D3]
    assert window_start(days, D3, 2) == D2
    assert window_start(days, D2, 63) == D0  # fewer dates than the window: all of them
    assert window_start([], D3, 5) is None


def test_forecast_log_serves_prices_as_the_api_rounds_them() -> None:
    index = pd.MultiIndex.from_tuples(
        [(pd.Timestamp(D1), "AAA", h) for h in (1, 2, 3)], names=["date", "ticker", "horizon"]
    )
    levels = [0.05, 0.5, 0.95]
    quantiles = pd.DataFrame(
        np.log([[0.95, 1.0, 1.05], [0.9, 1.0, 1.1], [0.8, 1.0, 1.2]]), index=index, columns=levels
    )
    log = forecast_log(
        quantiles, PRICES, model_version="7", horizons=(1, 3), interval_levels=(0.05, 0.95)
    )
    assert log["horizon"].tolist() == [1, 3]
    assert log["last_price"].tolist() == [102.0, 102.0]
    assert log["low"].tolist() == [96.9, 81.6]
    assert log["median"].tolist() == [102.0, 102.0]
    assert log["high"].tolist() == [107.1, 122.4]
    assert log["q0.95"].tolist() == log["high"].tolist()
    assert log["due_date"].tolist() == [D2, date(2024, 1, 5)]  # weekdays, until calendars
    assert not any(math.isnan(v) for v in log["q0.5"])
