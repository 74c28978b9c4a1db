"""Backward adjustment by the CRSP/Yahoo method against hand-computed values, and jumps no
event explains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsimples.adjustment import (
    AdjustmentError,
    JumpRule,
    adjust,
    price_factor,
    unexplained_jumps,
)

DAYS = pd.bdate_range("2022-05-02", periods=6)


def prices(ticker: str, closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": ticker, "date": DAYS[: len(closes)], "close": closes, "adj_close": closes}
    )


def events(*rows: tuple[str, int, str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [(t, DAYS[i], kind, value) for t, i, kind, value in rows],
        columns=["ticker", "ex_date", "kind", "value"],
    )


def test_factors_of_split_reverse_split_and_bonus() -> None:
    assert price_factor("split", 2) == 0.5  # one share became two: old prices halve
    assert price_factor("reverse_split", 10) == 10  # ten shares became one
    assert price_factor("bonus", 0.25) == 0.8  # 25% more shares: 1 / 1.25


def test_a_split_and_a_dividend_match_the_hand_computed_series() -> None:
    rows = prices("PETR4", [10.0, 10.5, 5.4, 5.5, 5.1, 5.2])
    # split 2 on day 3; dividend of 0.50 on day 5, previous close 5.50: factor 1 - 0.5/5.5
    adjusted = adjust(rows, events(("PETR4", 2, "split", 2), ("PETR4", 4, "dividend", 0.5)))

    expected = [50 / 11, 52.5 / 11, 54 / 11, 5.0, 5.1, 5.2]
    assert adjusted["adj_close"].tolist() == pytest.approx(expected, rel=1e-12)
    assert adjusted["close"].tolist() == [10.0, 10.5, 5.4, 5.5, 5.1, 5.2]  # as traded


def test_a_reverse_split_a_bonus_and_jcp() -> None:
    rows = pd.concat([prices("VALE3", [1.0, 1.1, 10.5, 10.8]), prices("ITUB4", [25.0, 20.5, 20.0])])
    found = adjust(
        rows,
        events(
            ("VALE3", 2, "reverse_split", 10),
            ("ITUB4", 1, "bonus", 0.25),
            ("ITUB4", 2, "jcp", 0.41),  # previous close 20.5: factor 0.98
        ),
    )
    vale = found[found["ticker"] == "VALE3"]["adj_close"].tolist()
    itub = found[found["ticker"] == "ITUB4"]["adj_close"].tolist()
    assert vale == pytest.approx([10.0, 11.0, 10.5, 10.8], rel=1e-12)
    assert itub == pytest.approx([25 / 1.25 * 0.98, 20.5 * 0.98, 20.0], rel=1e-12)


def test_an_event_counts_once_a_price_on_or_after_its_ex_date_exists() -> None:
    rows = prices("PETR4", [10.0, 10.5, 10.2])
    pending = adjust(rows, events(("PETR4", 4, "split", 2)))  # ex-date after the last price
    assert pending["adj_close"].tolist() == [10.0, 10.5, 10.2]
    tickers_without_events = adjust(prices("VALE3", [70.0, 71.0]), events(("PETR4", 1, "split", 2)))
    assert tickers_without_events["adj_close"].tolist() == [70.0, 71.0]


def test_a_dividend_not_below_the_previous_close_is_refused() -> None:
    with pytest.raises(AdjustmentError, match=r"PETR4: dividend of 12 on 2022-05-04 is not below "):
        adjust(prices("PETR4", [10.0, 10.5, 10.2]), events(("PETR4", 2, "dividend", 12.0)))


def test_rows_without_a_close_keep_their_adjusted_close() -> None:
    rows = prices("AAPL", [10.0, 10.0, 5.0]).assign(close=[np.nan, 10.0, 5.0])
    found = adjust(rows, events(("AAPL", 2, "split", 2)))
    assert found["adj_close"].tolist() == [10.0, 5.0, 5.0]


def calm_series(ticker: str, days: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    closes = 30 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    dates = pd.bdate_range("2022-01-03", periods=days)
    return pd.DataFrame({"ticker": ticker, "date": dates, "close": closes, "adj_close": closes})


def test_a_split_without_its_event_is_named_with_date_and_factor() -> None:
    rows = calm_series("PETR4")
    rows.loc[30:, ["close", "adj_close"]] /= 2
    rises = calm_series("MGLU3", seed=2)
    rises.loc[25:, ["close", "adj_close"]] *= 10

    jumps = unexplained_jumps(pd.concat([rows, rises]))

    assert [(j.ticker, j.date, j.n) for j in jumps] == [
        ("MGLU3", rises["date"][25], 10),
        ("PETR4", rows["date"][30], 2),
    ]
    assert "like a 1:10 reverse split" in str(jumps[0])
    assert "PETR4 moved x0.5" in str(jumps[1])
    assert "like a 2:1 split" in str(jumps[1])
    explained = adjust(rows, events(("PETR4", 0, "split", 2)).assign(ex_date=rows["date"][30]))
    assert unexplained_jumps(explained) == []


def test_a_halving_in_a_wild_market_or_an_ordinary_drop_is_not_a_jump() -> None:
    wild = calm_series("WILD3")
    swings = np.where(np.arange(40) % 2 == 0, 1.3, 1 / 1.3)
    wild["adj_close"] = 30 * np.cumprod(swings)
    wild.loc[30:, "adj_close"] /= 2
    drop = calm_series("DROP3")
    drop.loc[30:, "adj_close"] *= 0.8  # -20%: no share ratio
    assert unexplained_jumps(pd.concat([wild, drop]), JumpRule()) == []


def test_a_halving_in_adjusted_closes_only_is_a_real_move(sample_wide: pd.DataFrame) -> None:
    # The bundled sample holds a provider's adjusted closes: AAPL really lost 52% on
    # 2000-09-29. With no close as traded there is no split to hide, so nothing is named.
    aapl = sample_wide[["Date", "AAPL"]].dropna()
    rows = pd.DataFrame(
        {"ticker": "AAPL", "date": aapl["Date"], "adj_close": aapl["AAPL"], "close": np.nan}
    )
    assert unexplained_jumps(rows) == []
    as_traded = rows.assign(close=rows["adj_close"])
    assert [(j.date, j.n) for j in unexplained_jumps(as_traded)] == [
        (pd.Timestamp("2000-09-29"), 2)
    ]
