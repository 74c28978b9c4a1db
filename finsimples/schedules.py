"""When the daily flow runs: after each exchange's close, on the exchange's own calendar.

B3 and NYSE close at different Brasília times, and the gap moves twice a year with US
daylight saving (Brazil has none since 2019): NYSE's 16:00 New York close is 17:00 in São
Paulo from March to November and 18:00 otherwise. So each exchange's daily run is a cron in
the exchange's own time zone, at its regular close (from ``exchange_calendars``) plus a delay,
and Prefect's time-zone-aware cron keeps it right across DST changes. :func:`next_run` gives
the same instant from the calendar itself (early closes and holidays included), in the
schedule's time zone, for people and tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from finsimples.calendars import calendar, exchange, non_sessions, session_close


@dataclass(frozen=True)
class DailySchedule:
    """The daily flow's schedule for one exchange: ``cron`` in ``timezone``."""

    mic: str
    cron: str
    timezone: str


def regular_close(mic: str) -> dt.time:
    """The exchange's regular close, in its own time zone (e.g. 16:00 for NYSE).

    The latest close the calendar has over its regular (not early-close) sessions of the last
    year: what the exchange closes at on a normal day now.
    """
    import pandas as pd

    cal = calendar(mic)
    zone = ZoneInfo(exchange(mic).timezone)
    end = min(cal.last_session, pd.Timestamp.today().normalize())
    sessions = cal.sessions_in_range(end - pd.Timedelta(days=365), end)
    closes = cal.closes[sessions].dt.tz_convert(zone)
    latest = closes.dt.time.value_counts().idxmax()  # the most common close: the regular one
    return dt.time(latest.hour, latest.minute)


def daily_schedule(mic: str, delay_minutes: int) -> DailySchedule:
    """A weekday cron at the exchange's regular close plus ``delay_minutes``, in its zone."""
    close = regular_close(mic)
    at = dt.datetime.combine(dt.date(2000, 1, 3), close) + dt.timedelta(minutes=delay_minutes)
    if at.date() != dt.date(2000, 1, 3):
        raise ValueError(f"{mic}: close {close} + {delay_minutes} min passes midnight")
    place = exchange(mic)
    return DailySchedule(place.mic, f"{at.minute} {at.hour} * * 1-5", place.timezone)


def next_run(mic: str, after: dt.datetime, delay_minutes: int, timezone: str) -> dt.datetime:
    """The first session close of ``mic`` plus ``delay_minutes`` later than ``after``, in
    ``timezone`` (the calendar's own close: early closes count, holidays are skipped)."""
    day = after.astimezone(ZoneInfo(exchange(mic).timezone)).date()
    for _ in range(30):
        close = session_close(mic, day, timezone)
        if close is not None:
            run = close + dt.timedelta(minutes=delay_minutes)
            if run > after:
                return run
        day += dt.timedelta(days=1)
    raise ValueError(f"{mic}: no session within 30 days after {after}")


def market_closed_reason(mic: str, at: dt.datetime) -> str | None:
    """Why ``mic`` did not trade on the day of ``at`` (its own time zone), or None if it did.

    Returns e.g. ``"market closed: BVMF did not trade on 2025-03-03 (holiday)"``.
    """
    day = at.astimezone(ZoneInfo(exchange(mic).timezone)).date()
    why = non_sessions(mic, [day]).get(day)
    if why is None:
        return None
    return f"market closed: {mic} did not trade on {day} ({why})"
