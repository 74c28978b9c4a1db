"""How far a ticker's prices lag the lake, and the rule that refuses stale tickers.

The lake's as-of date is the newest price of any ticker. A ticker whose own last price is more
than ``stale_after_sessions`` trading sessions of its exchange behind that date is *stale*:
delisted, suspended for weeks, or a user's old export. Its forecast would start from a
months-old price as if it were today's, which misleads anyone deciding today, so the API
(409 ``stale_ticker``) and ``finsimples predict`` refuse it, naming its last date, the lake's
as-of date and the gap in sessions and calendar days.

Within the threshold (a halt of a few days, a holiday of its own exchange while the other
exchanges traded) it is forecast as of its own last date: the answer's ``as_of`` is that date,
and the path's dates are the sessions after it.

Sessions are counted with the exchange's calendar (``finsimples.calendars``): a B3 ticker last
priced before Carnival is not behind a lake whose newest prices are from NYSE's sessions during
Carnival. A ticker with no known exchange, or a date outside the calendar, counts weekdays.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

DEFAULT_STALE_AFTER_SESSIONS = 5
"""A trading week: longer than a holiday or a short halt, shorter than a delisting."""


@functools.lru_cache(maxsize=4096)
def sessions_between(exchange: str | None, after: dt.date, through: dt.date) -> int:
    """Trading sessions of ``exchange`` strictly after ``after`` and on or before ``through``.

    Weekdays when ``exchange`` is None or the calendar does not cover the range; 0 when
    ``through`` is not after ``after``.
    """
    if through <= after:
        return 0
    first = after + dt.timedelta(days=1)
    if exchange is not None:
        import pandas as pd

        from finsimples.calendars import calendar

        cal = calendar(exchange)
        start, end = pd.Timestamp(first), pd.Timestamp(through)
        if cal.first_session <= start and end <= cal.last_session:
            return len(cal.sessions_in_range(start, end))
    import numpy as np

    return int(np.busday_count(first, through + dt.timedelta(days=1)))


@dataclass(frozen=True)
class Lag:
    """How far one ticker's last price is behind the lake's as-of date.

    Attributes:
        ticker: The ticker.
        last_date: Its last price's date.
        lake_as_of: The lake's newest price date (any ticker).
        sessions: Sessions of its exchange after ``last_date`` up to ``lake_as_of``.
        exchange: The exchange whose sessions were counted (None: weekdays).
    """

    ticker: str
    last_date: dt.date
    lake_as_of: dt.date
    sessions: int
    exchange: str | None = None

    @property
    def days(self) -> int:
        """Calendar days from ``last_date`` to ``lake_as_of``."""
        return (self.lake_as_of - self.last_date).days

    def is_stale(self, stale_after_sessions: int) -> bool:
        """Whether the ticker is more than ``stale_after_sessions`` sessions behind."""
        return self.sessions > stale_after_sessions


def lag_of(ticker: str, last_date: dt.date, lake_as_of: dt.date, exchange: str | None) -> Lag:
    """The :class:`Lag` of a ticker last priced on ``last_date`` in a lake as of ``lake_as_of``."""
    sessions = sessions_between(exchange, last_date, lake_as_of)
    return Lag(ticker, last_date, lake_as_of, sessions, exchange)


class StaleTickerError(LookupError):
    """The ticker's prices stop too long before the lake's: it is not forecast.

    Attributes:
        lag: How far behind it is.
        stale_after_sessions: The threshold it exceeds.
    """

    def __init__(self, lag: Lag, stale_after_sessions: int) -> None:
        self.lag = lag
        self.stale_after_sessions = stale_after_sessions
        sessions = f"{lag.exchange} sessions" if lag.exchange else "weekdays"
        super().__init__(
            f"{lag.ticker} is stale: its last price is from {lag.last_date}, {lag.sessions} "
            f"{sessions} ({lag.days} calendar days) before the lake's as-of date "
            f"{lag.lake_as_of}; tickers more than {stale_after_sessions} sessions behind are "
            "not forecast (a forecast from its last price would not be about today): ingest its "
            "recent prices"
        )


def check_fresh(lag: Lag, stale_after_sessions: int) -> None:
    """Raise :class:`StaleTickerError` when ``lag`` exceeds ``stale_after_sessions``."""
    if lag.is_stale(stale_after_sessions):
        raise StaleTickerError(lag, stale_after_sessions)
