"""How far a ticker lags the lake, in its exchange's sessions; the stale rule at its threshold."""

from __future__ import annotations

from datetime import date

import pytest

from finsimples.freshness import (
    StaleTickerError,
    check_fresh,
    lag_of,
    sessions_between,
)
from finsimples.settings import Settings


def test_sessions_are_the_exchanges_own() -> None:
    # Carnival 2022: B3 closed on Monday 02-28 and Tuesday 03-01, NYSE traded both days.
    friday, tuesday = date(2022, 2, 25), date(2022, 3, 1)
    assert sessions_between("BVMF", friday, tuesday) == 0
    assert sessions_between("XNYS", friday, tuesday) == 2
    # Thanksgiving 2022 (11-24): NYSE closed, B3 open; the weekend counts for no one.
    assert sessions_between("XNYS", date(2022, 11, 23), date(2022, 11, 28)) == 2
    assert sessions_between("BVMF", date(2022, 11, 23), date(2022, 11, 28)) == 3
    assert sessions_between("XNYS", date(2021, 11, 30), date(2022, 11, 30)) == 252


def test_no_exchange_or_outside_the_calendar_counts_weekdays() -> None:
    assert sessions_between(None, date(2022, 11, 23), date(2022, 11, 28)) == 3
    # Before the calendar (1990): weekdays, New Year's Day included.
    assert sessions_between("XNYS", date(1989, 12, 29), date(1990, 1, 3)) == 3
    assert sessions_between("XNYS", date(2022, 11, 30), date(2022, 11, 30)) == 0
    assert sessions_between("XNYS", date(2022, 11, 30), date(2022, 11, 1)) == 0


@pytest.mark.parametrize(
    ("last", "stale"),
    [
        (date(2022, 11, 23), False),  # 4 sessions (Thanksgiving skipped)
        (date(2022, 11, 22), False),  # 5: at the threshold, still forecast
        (date(2022, 11, 21), True),  # 6: past it
    ],
)
def test_the_threshold_is_in_sessions(last: date, stale: bool) -> None:
    lag = lag_of("KO", last, date(2022, 11, 30), "XNYS")
    assert lag.is_stale(5) is stale
    if stale:
        with pytest.raises(StaleTickerError):
            check_fresh(lag, 5)
    else:
        check_fresh(lag, 5)


def test_a_b3_ticker_is_not_behind_nyse_days_during_carnival() -> None:
    lag = lag_of("PETR4", date(2022, 2, 25), date(2022, 3, 1), "BVMF")
    assert (lag.sessions, lag.days) == (0, 4)
    check_fresh(lag, 0)


def test_the_refusal_names_the_dates_and_the_gap() -> None:
    lag = lag_of("PG", date(2021, 11, 30), date(2022, 11, 30), "XNYS")
    with pytest.raises(StaleTickerError) as caught:
        check_fresh(lag, Settings().stale_after_sessions)
    message = str(caught.value)
    for part in ("PG", "2021-11-30", "2022-11-30", "252 XNYS sessions", "365 calendar days", "5"):
        assert part in message
    assert caught.value.lag is lag
    assert caught.value.stale_after_sessions == 5
