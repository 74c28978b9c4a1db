"""A synthetic market: N tickers x Y years of daily prices on real exchange calendars.

Benchmarks and tests need universes far larger than the bundled 20 tickers, with the traits
that make real prices hard: a market factor and sector factors (correlated cross-sections),
GARCH(1,1) volatility clustering, fat tails (Student-t innovations), and lives that start,
stop and pause (staggered listings, delistings, trading halts). Everything is drawn from one
seed, so a universe is the same on every machine.

Tickers are split across the exchanges of :class:`UniverseSpec` (XNYS and BVMF by default);
each exchange trades its own calendar's sessions (``finsimples.calendars``: B3's Carnival,
NYSE's holidays) and has its own market and sector factors. The returns are computed with
one loop over sessions, vectorised across tickers: 2,000 tickers x 10 years take seconds.

Output: the long frame the lake stores (``date``, ``ticker``, OHLC, ``adj_close``,
``volume``) and the tickers reference (``benchmarks.universe_files`` writes both as files
``finsimples ingest`` reads, or hands them to ``Lake.write_prices``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from finsimples.calendars import calendar, exchange

SECTORS: tuple[str, ...] = (
    "Energy", "Materials", "Industrials", "Utilities", "Health", "Financials",
    "Consumer", "Staples", "Technology", "Telecom", "Real Estate",
)  # fmt: skip
"""Sector names (GICS-like); a universe uses the first ``UniverseSpec.sectors`` of them."""


@dataclass(frozen=True)
class Garch:
    """GARCH(1,1) parameters on daily log returns: ``h' = omega + alpha r^2 + beta h``.

    ``omega`` is derived from the long-run daily volatility so every factor has the
    variance it is meant to have.
    """

    vol: float
    alpha: float = 0.08
    beta: float = 0.90

    @property
    def omega(self) -> float:
        """The constant that makes ``vol`` the unconditional daily volatility."""
        return self.vol**2 * (1 - self.alpha - self.beta)


@dataclass(frozen=True)
class UniverseSpec:
    """What to generate. Fractions are of each exchange's tickers.

    Attributes:
        tickers: how many tickers in all, split evenly over ``exchanges``.
        years: calendar years of history, ending at ``end``.
        seed: every random draw comes from it.
        exchanges: MICs (``finsimples.calendars.EXCHANGES``).
        sectors: sector factors per exchange.
        end: the last session (on or before this day).
        df: Student-t degrees of freedom of every innovation (> 2; lower: fatter tails).
        market: the market factor's GARCH; ``sector``: each sector factor's.
        idio_vol: median long-run daily volatility of a ticker's own noise.
        listed_late: share of tickers listed after the first session.
        delisted: share of tickers delisted before the last session.
        halted: share of tickers with trading halts (1 to 3 halts of 1 to 5 sessions).
    """

    tickers: int = 200
    years: int = 10
    seed: int = 0
    exchanges: tuple[str, ...] = ("XNYS", "BVMF")
    sectors: int = 8
    end: date = date(2025, 12, 31)
    df: float = 5.0
    market: Garch = field(default_factory=lambda: Garch(vol=0.010, alpha=0.09, beta=0.89))
    sector: Garch = field(default_factory=lambda: Garch(vol=0.008, alpha=0.07, beta=0.91))
    idio_vol: float = 0.014
    listed_late: float = 0.3
    delisted: float = 0.1
    halted: float = 0.2

    def __post_init__(self) -> None:
        if self.tickers < len(self.exchanges):
            raise ValueError(f"tickers={self.tickers}: expected at least one per exchange")
        if self.years < 1:
            raise ValueError(f"years={self.years}: expected >= 1")
        if not 1 <= self.sectors <= len(SECTORS):
            raise ValueError(f"sectors={self.sectors}: expected 1..{len(SECTORS)}")
        if self.df <= 2:
            raise ValueError(f"df={self.df}: expected > 2 (a finite variance)")
        for name in ("listed_late", "delisted", "halted"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a share in [0, 1]")
        for mic in self.exchanges:
            exchange(mic)  # UnknownExchangeError names the MIC


@dataclass(frozen=True)
class Universe:
    """A generated universe.

    Attributes:
        spec: what was asked for.
        prices: one row per (ticker, session traded): ``date``, ``ticker``, ``open``,
            ``high``, ``low``, ``close``, ``adj_close``, ``volume``; sorted by ticker, date.
        tickers: one row per ticker: ``ticker``, ``exchange``, ``currency``, ``name``,
            ``timezone``, ``sector``, ``listed``, ``delisted`` (the first and last sessions
            of its life; halts fall inside), ``halted_sessions``.
    """

    spec: UniverseSpec
    prices: pd.DataFrame
    tickers: pd.DataFrame


def generate_universe(spec: UniverseSpec) -> Universe:
    """Draw a universe; the same ``spec`` always gives the same frames."""
    counts = np.full(len(spec.exchanges), spec.tickers // len(spec.exchanges))
    counts[: spec.tickers % len(spec.exchanges)] += 1
    prices, tickers = [], []
    for k, (mic, n) in enumerate(zip(spec.exchanges, counts, strict=True)):
        rng = np.random.default_rng([spec.seed, k])
        sessions = exchange_sessions(mic, spec.end, spec.years)
        p, t = _exchange_universe(spec, mic, int(n), sessions, rng)
        prices.append(p)
        tickers.append(t)
    frame = pd.concat(prices, ignore_index=True)
    frame = frame.sort_values(["ticker", "date"], kind="mergesort", ignore_index=True)
    listed = pd.concat(tickers, ignore_index=True).sort_values("ticker", ignore_index=True)
    return Universe(spec=spec, prices=frame, tickers=listed)


def exchange_sessions(mic: str, end: date, years: int) -> pd.DatetimeIndex:
    """The sessions of ``mic`` in the ``years`` calendar years up to ``end``."""
    cal = calendar(mic)
    stop = min(pd.Timestamp(end), cal.last_session)
    start = max(stop - pd.DateOffset(years=years) + pd.Timedelta(days=1), cal.first_session)
    return pd.DatetimeIndex(cal.sessions_in_range(start, stop)).tz_localize(None)


def student_t(rng: np.random.Generator, df: float, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance (so a GARCH variance is the return's)."""
    return rng.standard_t(df, size=size) * np.sqrt((df - 2) / df)


def garch_paths(
    shocks: np.ndarray, omega: np.ndarray, alpha: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and conditional variances of GARCH(1,1) processes driven by ``shocks``.

    Args:
        shocks: (T, K) unit-variance innovations, one column per process.
        omega, alpha, beta: (K,) parameters; each process starts at its long-run variance.

    Returns:
        ``(returns, variances)``, both (T, K): ``r_t = sqrt(h_t) z_t``.
    """
    steps, width = shocks.shape
    h = np.broadcast_to(omega / (1 - alpha - beta), (width,)).astype(float)
    returns = np.empty_like(shocks)
    variances = np.empty_like(shocks)
    for t in range(steps):  # the recursion is sequential in time; vectorised across processes
        variances[t] = h
        returns[t] = np.sqrt(h) * shocks[t]
        h = omega + alpha * returns[t] ** 2 + beta * h
    return returns, variances


def ticker_codes(rng: np.random.Generator, mic: str, n: int) -> np.ndarray:
    """Distinct codes in the exchange's style: B3's four letters and a class, US letters."""
    letters = np.array(list(string.ascii_uppercase))
    width = 4 if mic == "BVMF" else 3 + (n > 26**3 // 2)
    picks = rng.choice(26**width, size=n, replace=False)
    digits = (picks[:, None] // 26 ** np.arange(width - 1, -1, -1)) % 26
    codes = np.array(["".join(row) for row in letters[digits]], dtype=object)
    if mic == "BVMF":
        classes = rng.choice(np.array(["3", "4", "11"], dtype=object), size=n, p=[0.5, 0.4, 0.1])
        codes = codes + classes
    return codes


def _exchange_universe(
    spec: UniverseSpec, mic: str, n: int, sessions: pd.DatetimeIndex, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    steps, sectors = len(sessions), spec.sectors
    codes = ticker_codes(rng, mic, n)
    sector = rng.integers(0, sectors, size=n)

    # Factors: one market, ``sectors`` sector factors, each its own GARCH(1,1).
    m, sm = spec.market, spec.sector
    factor_shocks = student_t(rng, spec.df, (steps, 1 + sectors))
    omega = np.array([m.omega] + [sm.omega] * sectors)
    alpha = np.array([m.alpha] + [sm.alpha] * sectors)
    beta = np.array([m.beta] + [sm.beta] * sectors)
    factors, _ = garch_paths(factor_shocks, omega, alpha, beta)

    # Each ticker: loadings, its own GARCH noise with drawn persistence and level.
    market_beta = rng.uniform(0.6, 1.4, size=n)
    sector_beta = rng.uniform(0.6, 1.3, size=n)
    idio_alpha = rng.uniform(0.04, 0.10, size=n)
    idio_beta = rng.uniform(0.95, 0.985, size=n) - idio_alpha
    idio_vol = spec.idio_vol * rng.lognormal(0.0, 0.35, size=n)
    idio, idio_var = garch_paths(
        student_t(rng, spec.df, (steps, n)),
        idio_vol**2 * (1 - idio_alpha - idio_beta),
        idio_alpha,
        idio_beta,
    )
    drift = rng.normal(0.0002, 0.0002, size=n)
    returns = drift + market_beta * factors[:, [0]] + sector_beta * factors[:, 1 + sector] + idio
    # A one-day move beyond +-35% would read as a split nobody recorded (finsimples.adjustment).
    returns = np.clip(returns, -0.35, 0.35)

    alive, listed, delisted, halted = _lives(spec, rng, steps, n)
    log_close = np.log(rng.lognormal(3.3, 0.7, size=n)) + np.cumsum(returns, axis=0)
    close = np.exp(log_close)
    scale = np.sqrt(idio_var + (market_beta * 0.01) ** 2)  # the day's typical move
    gap = np.exp(rng.normal(0.0, 0.3, size=(steps, n)) * scale)
    prev = np.vstack([close[:1] / np.exp(returns[:1]), close[:-1]])
    open_ = prev * gap
    top = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.5, size=(steps, n))) * scale)
    bottom = np.minimum(open_, close) * np.exp(
        -np.abs(rng.normal(0.0, 0.5, size=(steps, n))) * scale
    )
    volume = np.round(rng.lognormal(13.0, 0.5, size=n) * (scale / scale.mean(axis=0)))

    col, row = np.nonzero(alive.T)  # ticker-major: rows come out sorted by ticker, then date
    prices = pd.DataFrame(
        {
            "date": sessions[row],
            "ticker": codes[col],
            "open": open_[row, col],
            "high": top[row, col],
            "low": bottom[row, col],
            "close": close[row, col],
            "adj_close": close[row, col],
            "volume": volume[row, col],
        }
    )
    place = exchange(mic)
    names = [f"{SECTORS[s]} Synthetic {c}" for s, c in zip(sector, codes, strict=True)]
    tickers = pd.DataFrame(
        {
            "ticker": codes,
            "exchange": place.mic,
            "currency": place.currency,
            "name": names,
            "timezone": place.timezone,
            "sector": [SECTORS[s] for s in sector],
            "listed": sessions[listed],
            "delisted": sessions[delisted - 1],
            "halted_sessions": halted,
        }
    )
    return prices, tickers


def _lives(
    spec: UniverseSpec, rng: np.random.Generator, steps: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which sessions each ticker trades: (T, n) mask, listing, end (exclusive), halted count.

    Every life keeps at least a third of the span (and a year at most), so a ticker listed
    late and delisted early still has history to learn from.
    """
    life = max(min(steps // 3, 252), 2)
    listed = np.where(
        rng.random(n) < spec.listed_late, rng.integers(1, max(steps - life, 2), size=n), 0
    )
    span = steps - listed
    cut = rng.integers(1, np.maximum(span - life, 2))  # >= 1: a delisting ends before the last
    delisted = np.where(rng.random(n) < spec.delisted, np.maximum(steps - cut, listed + 2), steps)
    index = np.arange(steps)[:, None]
    alive = (index >= listed) & (index < delisted)
    halted = np.zeros(n, dtype=int)
    for i in np.flatnonzero(rng.random(n) < spec.halted):
        first, last = listed[i] + 1, delisted[i] - 6  # never the first or last session
        if last <= first:
            continue
        for _ in range(int(rng.integers(1, 4))):
            start = int(rng.integers(first, last))
            alive[start : start + int(rng.integers(1, 6)), i] = False
        halted[i] = int((~alive[listed[i] : delisted[i], i]).sum())
    return alive, listed, delisted, halted
