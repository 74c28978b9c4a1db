"""Forecast dates on the exchange's own calendar: real sessions, holidays skipped."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from finsimples.calendars import (
    UnknownExchangeError,
    exchange,
    is_session,
    next_sessions,
    non_sessions,
)
from finsimples.forecast import trading_days_after


def test_b3_carnival_2025_is_skipped() -> None:
    # Carnival Monday and Tuesday (03-03, 03-04) are B3 holidays; Ash Wednesday opens late.
    assert next_sessions("BVMF", date(2025, 2, 27), 3) == [
        date(2025, 2, 28),
        date(2025, 3, 5),
        date(2025, 3, 6),
    ]
    assert not is_session("BVMF", date(2025, 3, 3))
    assert not is_session("BVMF", date(2025, 3, 4))


def test_nyse_trades_on_b3_carnival_but_not_on_its_own_holidays() -> None:
    assert next_sessions("XNYS", date(2025, 2, 28), 2) == [date(2025, 3, 3), date(2025, 3, 4)]
    # Independence Day 2025 is a Friday; 2025-01-09 was the national day of mourning (Carter).
    assert next_sessions("XNYS", date(2025, 7, 3), 1) == [date(2025, 7, 7)]
    assert next_sessions("XNAS", date(2025, 1, 8), 1) == [date(2025, 1, 10)]


@pytest.mark.parametrize(
    ("mic", "after", "expected"),
    [
        # B3: 24 and 31 Dec are no-trading days too, 25 Dec and 1 Jan holidays.
        ("BVMF", date(2025, 12, 22), [date(2025, 12, 23), date(2025, 12, 26), date(2025, 12, 29)]),
        ("XNYS", date(2025, 12, 23), [date(2025, 12, 24), date(2025, 12, 26), date(2025, 12, 29)]),
    ],
)
def test_christmas_is_skipped(mic: str, after: date, expected: list[date]) -> None:
    assert next_sessions(mic, after, 3) == expected


def test_thirty_sessions_are_all_real_sessions_and_strictly_after() -> None:
    for mic in ("BVMF", "XNYS"):
        days = next_sessions(mic, date(2025, 2, 20), 30)
        assert len(days) == 30
        assert days[0] > date(2025, 2, 20)
        assert all(is_session(mic, d) for d in days)
        assert days == sorted(set(days))


def test_a_session_day_or_a_datetime_counts_from_the_next_session() -> None:
    assert next_sessions("XNYS", datetime(2025, 7, 3, 16, 0), 1) == [date(2025, 7, 7)]
    assert next_sessions("XNYS", date(2025, 7, 5), 1) == [date(2025, 7, 7)]  # a Saturday


def test_trading_days_after_uses_the_exchange_and_keeps_weekdays_without_one() -> None:
    assert trading_days_after(date(2025, 7, 3), 1, "XNYS") == [date(2025, 7, 7)]
    assert trading_days_after(date(2025, 7, 3), 1) == [date(2025, 7, 4)]


def test_non_sessions_say_why() -> None:
    closed = non_sessions(
        "BVMF", [date(2025, 3, 3), date(2025, 3, 1), date(2025, 3, 5), date(1980, 1, 1)]
    )
    assert closed == {date(2025, 3, 3): "holiday", date(2025, 3, 1): "weekend"}


def test_unknown_exchange_names_the_supported_ones() -> None:
    with pytest.raises(UnknownExchangeError, match="BVMF, XNYS, XNAS"):
        exchange("XLON")
    assert exchange("bvmf").currency == "BRL"
