"""Backward-adjusted closes from corporate events, and jumps no event explains.

The method is CRSP's, which Yahoo follows: the close as traded stays in ``close``; ``adj_close``
is the close times the product of the factors of every event whose ex-date is after the row's
date, so the latest prices are as traded and older ones are scaled to them. Factors:

=============  ========================  ==========================================
kind           factor before the ex-date  why
=============  ========================  ==========================================
split k        1 / k                      one share became k: old prices / k
reverse_split  k                          k shares became one: old prices x k
bonus b        1 / (1 + b)                b new shares per share: like a split 1 + b
dividend, jcp  1 - amount / previous      the cash left the price on the ex-date;
               close                      previous close = the last as-traded close
                                          before the ex-date
=============  ========================  ==========================================

An event counts once the ticker has a price on or after its ex-date: before that its previous
close may still change (a late file), and no price is on its far side yet. The adjusted series
depends only on the closes and the events, whichever arrived first.

A jump is a one-day move of ``adj_close`` near n:1 or 1:n (n in :data:`JUMP_RATIOS`) while the
ticker's market was calm, between two prices as traded (rows with a ``close``): what a split,
reverse split or bonus with no event looks like. Files of adjusted closes only (the bundled
sample) are adjusted by their provider: a halving there is a real move (AAPL on 2000-09-29).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from finsimples.settings import Settings

JUMP_RATIOS = (2, 3, 4, 5, 8, 10, 20, 25, 50, 100)
"""The share ratios splits and reverse splits use (B3 and elsewhere)."""


class AdjustmentError(ValueError):
    """An event that cannot adjust its ticker's prices (a dividend not below the close)."""


def price_factor(kind: str, value: float) -> float:
    """The factor a split, reverse split or bonus applies to prices before its ex-date."""
    if kind == "split":
        return 1.0 / value
    if kind == "reverse_split":
        return value
    if kind == "bonus":
        return 1.0 / (1.0 + value)
    raise ValueError(f"kind {kind!r} is not a split, reverse_split or bonus")


def event_factors(dates: np.ndarray, closes: np.ndarray, events: pd.DataFrame) -> pd.DataFrame:
    """The events that count for one ticker and their factors.

    Args:
        dates: the ticker's dates, sorted (datetime64).
        closes: its closes as traded (NaN where unknown).
        events: its events (``ex_date``, ``kind``, ``value``); renames are ignored here.

    Returns:
        ``ex_date`` and ``factor`` of each event with a price on or after its ex-date.

    Raises:
        AdjustmentError: a dividend or JCP not below the previous close.
    """
    rows = []
    last = dates[-1] if len(dates) else None
    for ex_date, kind, value in events[["ex_date", "kind", "value"]].itertuples(index=False):
        if kind == "rename" or last is None or np.datetime64(ex_date) > last:
            continue
        if kind in ("split", "reverse_split", "bonus"):
            rows.append((ex_date, price_factor(kind, value)))
            continue
        before = np.flatnonzero((dates < np.datetime64(ex_date)) & ~np.isnan(closes))
        if not len(before):
            continue  # no price before the ex-date: nothing to adjust
        previous = float(closes[before[-1]])
        if value >= previous:
            day = pd.Timestamp(dates[before[-1]]).date()
            raise AdjustmentError(
                f"{kind} of {value:g} on {pd.Timestamp(ex_date).date()} is not below the "
                f"previous close {previous:g} ({day}): check the amount (per share, as paid)"
            )
        rows.append((ex_date, 1.0 - value / previous))
    return pd.DataFrame(rows, columns=["ex_date", "factor"])


def adjust_ticker(rows: pd.DataFrame, events: pd.DataFrame) -> np.ndarray:
    """The adjusted closes of one ticker's rows (sorted by date).

    Rows without a close keep their ``adj_close`` (a file of adjusted closes only).
    """
    dates = rows["date"].to_numpy(dtype="datetime64[ns]")
    closes = rows["close"].to_numpy(dtype=float)
    factors = event_factors(dates, closes, events).sort_values("ex_date", kind="stable")
    ex_dates = factors["ex_date"].to_numpy(dtype="datetime64[ns]")
    # suffix[k]: the product of the factors of events k..end; a row takes the events after it.
    suffix = np.append(np.cumprod(factors["factor"].to_numpy(dtype=float)[::-1])[::-1], 1.0)
    after = np.searchsorted(ex_dates, dates, side="right")
    adjusted = closes * suffix[after]
    kept = rows["adj_close"].to_numpy(dtype=float)
    return np.where(np.isnan(closes), kept, adjusted)


def adjust(prices: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``prices`` with ``adj_close`` recomputed for every ticker that has events.

    Args:
        prices: rows with ``ticker``, ``date``, ``close``, ``adj_close``.
        events: ``ticker``, ``ex_date``, ``kind``, ``value`` (``finsimples.events``).

    Raises:
        AdjustmentError: naming the ticker and the event.
    """
    out = prices.sort_values(["ticker", "date"], kind="stable").reset_index(drop=True)
    by_ticker: dict[object, pd.DataFrame] = {t: own for t, own in events.groupby("ticker")}
    for ticker, index in out.groupby("ticker").indices.items():
        own = by_ticker.get(ticker)
        if own is None:
            continue
        try:
            out.loc[index, "adj_close"] = adjust_ticker(out.iloc[index], own)
        except AdjustmentError as exc:
            raise AdjustmentError(f"{ticker}: {exc}") from exc
    return out


@dataclass(frozen=True)
class JumpRule:
    """When a one-day move looks like a split nobody recorded.

    Attributes:
        tolerance: how far (relative) the ratio may be from n or 1/n.
        calm_sessions: the sessions before the move that say how the ticker usually moves.
        calm_multiple: the move must be this many times the median absolute daily move of
            those sessions (a real crash usually comes in a market that is not calm).
    """

    tolerance: float = 0.05
    calm_sessions: int = 20
    calm_multiple: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> JumpRule:
        """The rule of the settings (``FINSIMPLES_JUMP_*``)."""
        return cls(
            settings.jump_tolerance, settings.jump_calm_sessions, settings.jump_calm_multiple
        )


@dataclass(frozen=True)
class Jump:
    """A one-day move no event explains."""

    ticker: str
    date: pd.Timestamp
    ratio: float
    """``adj_close`` on the day over the day before."""
    n: int

    @property
    def likely(self) -> str:
        """``a 2:1 split`` or ``a 1:10 reverse split``, as the ratio suggests."""
        return f"a {self.n}:1 split" if self.ratio < 1 else f"a 1:{self.n} reverse split"

    def __str__(self) -> str:
        return (
            f"{self.ticker} moved x{self.ratio:.3g} on {self.date.date()}, like {self.likely}, "
            "and no event explains it"
        )


def unexplained_jumps(prices: pd.DataFrame, rule: JumpRule | None = None) -> list[Jump]:
    """Moves of ``adj_close`` near n:1 or 1:n in a calm market (see the module docstring).

    Args:
        prices: ``ticker``, ``date``, ``adj_close`` and, when known, ``close``; any order.
            With a ``close`` column, only moves between two rows with a close count.
        rule: the thresholds (default: :class:`JumpRule`).
    """
    rule = rule or JumpRule()
    columns = ["ticker", "date", "adj_close", *(["close"] if "close" in prices else [])]
    frame = prices[columns].sort_values(["ticker", "date"], kind="stable")
    tickers = frame["ticker"].to_numpy()
    log_price = np.log(frame["adj_close"].to_numpy(dtype=float))
    moves = pd.Series(log_price, index=frame.index).groupby(tickers).diff()
    if "close" in frame:
        # Only prices as traded can hide a split: a provider's adjusted closes (the wide
        # layout, no close) already carry theirs, so a halving there is a real move.
        traded = frame["close"].notna()
        both = traded & traded.groupby(tickers).shift(1, fill_value=False).astype(bool)
        moves = moves.where(both)
    usual = (
        moves.abs()
        .groupby(tickers)
        .transform(lambda s: s.shift(1).rolling(rule.calm_sessions, min_periods=5).median())
    )
    targets = np.log(np.array(JUMP_RATIOS, dtype=float))
    width = math.log1p(rule.tolerance)
    size = moves.abs().to_numpy()
    nearest = np.abs(size[:, None] - targets[None, :])
    near = nearest.min(axis=1) < width  # NaN (a ticker's first row) is never near
    calm = size > rule.calm_multiple * usual.to_numpy()
    found = np.flatnonzero(near & calm)
    jumps = []
    for position in found:
        row = frame.iloc[position]
        ratio = float(math.exp(moves.iloc[position]))
        n = JUMP_RATIOS[int(np.argmin(nearest[position]))]
        jumps.append(Jump(str(row["ticker"]), pd.Timestamp(row["date"]), ratio, n))
    return jumps
