"""The synthetic universe has the traits of real prices, and only those the spec asks for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.universe import Universe, UniverseSpec, exchange_sessions, generate_universe
from benchmarks.universe_files import listings, write_universe_files
from finsimples.calendars import non_sessions
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings

SPEC = UniverseSpec(tickers=60, years=6, seed=3)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return generate_universe(SPEC)


@pytest.fixture(scope="module")
def returns(universe: Universe) -> pd.DataFrame:
    """Daily log returns with each ticker's exchange and sector (NaN after a gap's start)."""
    prices = universe.prices.merge(universe.tickers[["ticker", "exchange", "sector"]])
    prices["r"] = np.log(prices["adj_close"]).groupby(prices["ticker"]).diff()
    return prices.dropna(subset=["r"])


def test_volatility_clusters(returns: pd.DataFrame) -> None:
    def squared_autocorr(r: pd.Series) -> float:
        return float((r**2).autocorr(1))

    by_ticker = returns.groupby("ticker")["r"]
    clustered = by_ticker.apply(squared_autocorr)
    rng = np.random.default_rng(0)
    # The same returns in a random order: whatever clustering there is comes from time order.
    shuffled = by_ticker.apply(lambda r: squared_autocorr(pd.Series(rng.permutation(r.to_numpy()))))
    assert clustered.mean() > 0.03
    assert clustered.mean() > shuffled.mean() + 5 * shuffled.std() / np.sqrt(len(shuffled))
    assert (clustered > 0).mean() > 0.8


def test_tails_are_fat(returns: pd.DataFrame) -> None:
    excess = returns.groupby("ticker")["r"].apply(lambda r: r.kurt())
    assert excess.median() > 1.0  # a normal distribution has 0
    assert (excess > 0).all()


def test_correlation_within_sector_above_across_sectors_above_zero(
    universe: Universe, returns: pd.DataFrame
) -> None:
    sector = universe.tickers.set_index("ticker")["sector"]
    for mic, rows in returns.groupby("exchange"):
        wide = rows.pivot(index="date", columns="ticker", values="r")
        corr = wide.corr(min_periods=100).to_numpy()
        kinds = sector.loc[wide.columns].to_numpy()
        same = kinds[:, None] == kinds[None, :]
        off_diagonal = ~np.eye(len(kinds), dtype=bool)
        within, across = np.nanmean(corr[same & off_diagonal]), np.nanmean(corr[~same])
        assert within > across + 0.05, (mic, within, across)
        assert across > 0.1, (mic, across)


def test_same_seed_same_universe_other_seed_another(universe: Universe) -> None:
    again = generate_universe(SPEC)
    pd.testing.assert_frame_equal(universe.prices, again.prices)
    pd.testing.assert_frame_equal(universe.tickers, again.tickers)
    other = generate_universe(UniverseSpec(tickers=60, years=6, seed=4))
    assert set(other.tickers["ticker"]) != set(universe.tickers["ticker"])
    assert not np.isclose(
        other.prices["adj_close"].iloc[:100], universe.prices["adj_close"].iloc[:100]
    ).all()


def test_lives_start_stop_and_pause(universe: Universe) -> None:
    tickers = universe.tickers.set_index("ticker")
    counts = universe.prices.groupby("ticker")["date"].agg(["min", "max", "count"])
    for mic, group in tickers.groupby("exchange"):
        sessions = exchange_sessions(str(mic), SPEC.end, SPEC.years)
        late = group["listed"] > sessions[0]
        gone = group["delisted"] < sessions[-1]
        paused = group["halted_sessions"] > 0
        assert 0 < late.sum() < len(group), mic
        assert 0 < gone.sum() < len(group), mic
        assert 0 < paused.sum() < len(group), mic
        seen = counts.loc[group.index]
        assert (seen["min"] == group["listed"]).all()
        assert (seen["max"] == group["delisted"]).all()
        # Every session of a life is traded but the halted ones.
        first = sessions.searchsorted(group["listed"].to_numpy())
        last = sessions.searchsorted(group["delisted"].to_numpy())
        life = last - first + 1
        assert (seen["count"].to_numpy() == life - group["halted_sessions"].to_numpy()).all()


def test_only_sessions_of_each_exchange(universe: Universe) -> None:
    prices = universe.prices.merge(universe.tickers[["ticker", "exchange"]])
    for mic, rows in prices.groupby("exchange"):
        days = rows["date"].dt.date.unique()
        assert non_sessions(str(mic), days) == {}
        assert set(rows["date"]) <= set(exchange_sessions(str(mic), SPEC.end, SPEC.years))
    # The two calendars differ (B3's Carnival, US holidays): each exchange keeps its own.
    b3 = set(prices.loc[prices["exchange"] == "BVMF", "date"])
    us = set(prices.loc[prices["exchange"] == "XNYS", "date"])
    assert b3 - us
    assert us - b3


def test_prices_are_valid_bars(universe: Universe) -> None:
    p = universe.prices
    assert p[["open", "high", "low", "close", "adj_close", "volume"]].gt(0).all().all()
    assert (p["high"] >= p[["open", "close"]].max(axis=1)).all()
    assert (p["low"] <= p[["open", "close"]].min(axis=1)).all()
    assert not p.duplicated(["ticker", "date"]).any()


@pytest.mark.parametrize(
    ("field", "value"),
    [("tickers", 1), ("years", 0), ("sectors", 0), ("df", 2.0), ("halted", 1.5)],
)
def test_bad_spec_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        UniverseSpec(**{field: value})  # type: ignore[arg-type]


def test_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="XLON"):
        UniverseSpec(exchanges=("XNYS", "XLON"))


def test_ingest_reads_the_written_files(tmp_path: Path) -> None:
    small = generate_universe(UniverseSpec(tickers=8, years=1, seed=5))
    paths = write_universe_files(small, tmp_path / "files")
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    report = ingest_files(lake, paths)
    assert report.write.new == len(small.prices)
    assert report.jumps == []  # no day looks like an unrecorded split
    stored = lake.read_prices().sort_values(["ticker", "date"], ignore_index=True)
    np.testing.assert_allclose(stored["adj_close"], small.prices["adj_close"])
    assert {t: (v.exchange, v.currency) for t, v in lake.listings().items()} == {
        t: (v.exchange, v.currency) for t, v in listings(small).items()
    }
