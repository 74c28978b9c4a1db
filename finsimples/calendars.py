"""Trading calendars: which days an exchange trades, and when it closes.

A thin layer over ``exchange_calendars`` (offline data, holidays included: B3's Carnival,
NYSE's national days of mourning). Exchanges are named by their MIC: ``BVMF`` (B3), ``XNYS``
(NYSE), ``XNAS`` (Nasdaq). Calendars are built on first use and kept (about 0.3 s each);
nothing happens at import.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import exchange_calendars as xc
    import pandas as pd

CALENDAR_START = "1990-01-01"
"""First day the calendars know: the bundled sample starts on 1990-01-02."""


@dataclass(frozen=True)
class Exchange:
    """An exchange FinSimples knows: its MIC, name, trading currency and time zone."""

    mic: str
    name: str
    currency: str
    timezone: str


EXCHANGES: dict[str, Exchange] = {
    "BVMF": Exchange("BVMF", "B3", "BRL", "America/Sao_Paulo"),
    "XNYS": Exchange("XNYS", "NYSE", "USD", "America/New_York"),
    "XNAS": Exchange("XNAS", "Nasdaq", "USD", "America/New_York"),
}
"""The supported exchanges by MIC (``--exchange`` accepts these)."""


class UnknownExchangeError(ValueError):
    """An exchange MIC FinSimples has no calendar for."""

    def __init__(self, mic: str) -> None:
        super().__init__(f"unknown exchange {mic!r}: expected one of {', '.join(EXCHANGES)}")


def exchange(mic: str) -> Exchange:
    """The exchange of ``mic`` (case-insensitive).

    Raises:
        UnknownExchangeError: not one of :data:`EXCHANGES`.
    """
    found = EXCHANGES.get(mic.strip().upper())
    if found is None:
        raise UnknownExchangeError(mic)
    return found


@functools.lru_cache(maxsize=len(EXCHANGES))
def calendar(mic: str) -> xc.ExchangeCalendar:
    """The ``exchange_calendars`` calendar of ``mic``, from :data:`CALENDAR_START`."""
    import exchange_calendars as xc

    return xc.get_calendar(exchange(mic).mic, start=CALENDAR_START)


def _day(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


@functools.lru_cache(maxsize=4096)
def _sessions_after(mic: str, day: dt.date, count: int) -> tuple[dt.date, ...]:
    import pandas as pd

    cal = calendar(mic)
    stamp = pd.Timestamp(day)
    if stamp < cal.first_session or stamp >= cal.last_session:
        raise ValueError(
            f"{day} is outside the {mic} calendar ({cal.first_session.date()} to "
            f"{cal.last_session.date()})"
        )
    first = cal.date_to_session(stamp, direction="next")
    if first == stamp:
        first = cal.next_session(first)
    sessions = cal.sessions_window(first, count)
    if len(sessions) < count:
        raise ValueError(f"the {mic} calendar ends before {count} sessions after {day}")
    return tuple(s.date() for s in sessions)


def next_sessions(mic: str, after: dt.date, count: int) -> list[dt.date]:
    """The next ``count`` trading sessions of ``mic`` strictly after ``after``.

    Raises:
        UnknownExchangeError: ``mic`` is not supported.
        ValueError: the calendar does not cover the days asked for.
    """
    if count < 1:
        return []
    return list(_sessions_after(exchange(mic).mic, _day(after), count))


def non_sessions(mic: str, days: Iterable[dt.date]) -> dict[dt.date, str]:
    """The ``days`` the exchange did not trade, each with why: ``holiday`` or ``weekend``.

    Days outside the calendar's range are not judged (the calendar knows nothing of them).
    """
    import pandas as pd

    cal = calendar(mic)
    stamps = pd.DatetimeIndex(sorted({pd.Timestamp(_day(d)) for d in days}))
    inside = stamps[(stamps >= cal.first_session) & (stamps <= cal.last_session)]
    closed = inside[~inside.isin(cal.sessions)]
    return {s.date(): "weekend" if s.weekday() >= 5 else "holiday" for s in closed}


def is_session(mic: str, day: dt.date) -> bool:
    """Whether the exchange trades on ``day``."""
    return not non_sessions(mic, [day])


def session_close(mic: str, day: dt.date, timezone: str) -> dt.datetime | None:
    """When the exchange closes on ``day``, in ``timezone``; None when it does not trade.

    Early closes (e.g. NYSE's day after Thanksgiving) are the calendar's own.
    """
    import pandas as pd

    if not is_session(mic, day):
        return None
    close: pd.Timestamp = calendar(mic).session_close(pd.Timestamp(_day(day)))
    return close.to_pydatetime().astimezone(ZoneInfo(timezone))
