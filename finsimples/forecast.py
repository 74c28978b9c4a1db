"""The forecast answer: a price path with calibrated quantiles, shared by the CLI and the API.

numpy, pandas, scipy and ``training`` are imported inside the functions that use them: the
API's supervisor process imports :class:`PathPoint` (through ``bentos.schemas``) only to
describe the routes, and must stay small.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from finsimples.tickers import Listing

# The grid of levels the expected return averages over (see _expected_simple_returns).
_GRID = (0.0005, 0.9995, 1000)


def __getattr__(name: str) -> int:
    """``LOOKBACK_DAYS``: calendar days that surely hold ``MIN_HISTORY_DAYS`` trading days
    (weekends, holidays, gaps). Computed on use: ``training.features`` imports pandas."""
    if name == "LOOKBACK_DAYS":
        from training.features import MIN_HISTORY_DAYS

        return int(MIN_HISTORY_DAYS * 1.6) + 30
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PathPoint(BaseModel):
    """The forecast for one trading day ahead."""

    model_config = ConfigDict(frozen=True)

    day: int = Field(description="trading days after as_of (1..horizon)")
    # `dt.date`, not `date`: the field is named `date` and would shadow the type.
    date: dt.date = Field(
        description="the trading session of the ticker's exchange (weekdays when the exchange "
        "is not known)"
    )
    prices: dict[str, float] = Field(description="price quantiles, keys like 'q0.05'")
    returns: dict[str, float] = Field(description="simple-return quantiles, keys like 'q0.05'")
    expected_return: float = Field(description="mean simple return of the forecast distribution")
    prob_gain: float = Field(
        ge=0,
        le=1,
        description="probability the price is above last_price, read off this day's return "
        "quantiles: they are mapped to normal scores and zero is located by linear "
        "interpolation between the two quantiles around it (extrapolated beyond the outermost; "
        "quantiles exactly at zero count as the middle of their levels). Exact for a normal "
        "forecast; at or above 0.5 exactly when the median price is at or above last_price",
    )


class Forecast(BaseModel):
    """A forecast of one ticker over ``horizon_days`` trading days."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    as_of: dt.date = Field(description="last price date used")
    last_price: float
    horizon_days: int
    interval: float = Field(description="nominal coverage of the q-low..q-high interval, e.g. 0.9")
    path: list[PathPoint]
    exchange: str | None = Field(
        default=None, description="MIC of the exchange whose sessions the path's dates are"
    )
    currency: str | None = Field(default=None, description="ISO code of the prices' currency")

    def up_to(self, horizon: int) -> Forecast:
        """This forecast cut at ``horizon`` days: what :func:`make_forecast` returns for it.

        Every path point depends on its own day only, so the API computes a ticker's longest
        path once and cuts it per request.
        """
        if horizon == self.horizon_days:
            return self
        if not 1 <= horizon <= self.horizon_days:
            raise ValueError(f"horizon {horizon} is outside 1..{self.horizon_days}")
        path = [point for point in self.path if point.day <= horizon]
        return self.model_copy(update={"horizon_days": horizon, "path": path})


def trading_days_after(day: dt.date, count: int, exchange: str | None = None) -> list[dt.date]:
    """The next ``count`` sessions of ``exchange`` after ``day`` (weekdays when it is None).

    Raises:
        ValueError: ``day`` is outside the exchange's calendar.
    """
    if exchange is not None:
        from finsimples.calendars import next_sessions

        return next_sessions(exchange, day, count)
    current = day.date() if isinstance(day, dt.datetime) else day
    days: list[dt.date] = []
    while len(days) < count:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            days.append(current)
    return days


def make_forecast(
    quantiles: pd.DataFrame,
    *,
    ticker: str,
    last_price: float,
    horizon: int,
    interval: float,
    listing: Listing | None = None,
) -> Forecast:
    """Build the answer from one origin's quantile frame (log returns, horizons 1..H).

    Args:
        quantiles: quantile frame rows of a single (date, ticker), indexed by
            (date, ticker, horizon) with quantile levels as columns.
        ticker: the ticker.
        last_price: the adjusted close at the origin.
        horizon: how many days of the path to return.
        interval: nominal coverage of the outer quantile pair.
        listing: the ticker's exchange and currency (the lake's ``tickers`` table); default:
            the bundled reference and the B3 rule, else weekdays and no currency.
    """
    import numpy as np
    import pandas as pd

    from finsimples.tickers import infer_listing
    from training.quantiles import prob_gain

    listing = listing or infer_listing(ticker)
    mic = listing.exchange if listing else None

    rows = quantiles[quantiles.index.get_level_values("horizon") <= horizon]
    as_of = pd.Timestamp(rows.index.get_level_values("date")[0]).date()
    levels = [float(c) for c in rows.columns]
    keys = [f"q{level:g}" for level in levels]
    gains = prob_gain(rows).to_numpy().tolist()
    log_q = rows.to_numpy(dtype=float)
    growth = np.exp(log_q).tolist()
    simple = np.expm1(log_q).tolist()
    expected = _expected_simple_returns(log_q, levels).tolist()
    dates = trading_days_after(as_of, horizon, mic)
    path = [
        PathPoint(
            day=int(h),
            date=dates[i],
            prices={k: round(last_price * g, 4) for k, g in zip(keys, growth[i], strict=True)},
            returns={k: round(r, 6) for k, r in zip(keys, simple[i], strict=True)},
            expected_return=round(expected[i], 6),
            prob_gain=round(gains[i], 4),
        )
        for i, h in enumerate(rows.index.get_level_values("horizon"))
    ]
    return Forecast(
        ticker=ticker,
        as_of=as_of,
        last_price=last_price,
        horizon_days=horizon,
        interval=interval,
        path=path,
        exchange=mic,
        currency=listing.currency if listing else None,
    )


@functools.lru_cache(maxsize=8)
def _score_grid(levels: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal scores of ``levels`` and of the averaging grid, and each grid point's segment.

    Constant per set of levels: computed once (``norm.ppf`` dominated a forecast's cost).
    """
    import numpy as np
    from scipy.stats import norm

    scores = norm.ppf(levels)
    grid = norm.ppf(np.linspace(*_GRID))
    # np.interp's segment: scores[j] <= grid < scores[j + 1] (outside points are extrapolated).
    segment = np.clip(np.searchsorted(scores, grid, side="right") - 1, 0, len(scores) - 2)
    for array in (scores, grid, segment):
        array.setflags(write=False)
    return scores, grid, segment


def _expected_simple_returns(log_quantiles: np.ndarray, levels: list[float]) -> np.ndarray:
    """E[exp(r)] - 1 for each row's distribution, described by its quantiles at ``levels``.

    Averages exp(r) over a fine grid of levels, interpolating the quantile function in normal
    scores between the given levels and extrapolating linearly in them beyond the outermost.
    All rows at once, with the very operations of ``np.interp`` (same numbers, bit for bit).
    """
    import numpy as np

    scores, grid, segment = _score_grid(tuple(levels))
    q = log_quantiles
    slopes = (q[:, 1:] - q[:, :-1]) / (scores[1:] - scores[:-1])
    inside = slopes[:, segment] * (grid - scores[segment]) + q[:, segment]
    # np.interp returns the knot's own value on a knot.
    inside = np.where(grid == scores[segment], q[:, segment], inside)
    inside = np.where(grid == scores[-1], q[:, -1:], inside)
    below = q[:, :1] + (grid - scores[0]) * slopes[:, :1]
    above = q[:, -1:] + (grid - scores[-1]) * slopes[:, -1:]
    values = np.where(grid < scores[0], below, np.where(grid > scores[-1], above, inside))
    return np.mean(np.exp(values), axis=1) - 1.0


def _expected_simple_return(log_quantiles: np.ndarray, levels: list[float]) -> float:
    """:func:`_expected_simple_returns` of one row."""
    return float(_expected_simple_returns(log_quantiles[None, :], levels)[0])


def suggest_tickers(ticker: str, known: list[str]) -> list[str]:
    """Up to three known tickers close to ``ticker``, for "unknown ticker" answers."""
    return difflib.get_close_matches(ticker, known, n=3, cutoff=0.5)
