"""What an ingest writes once corporate events are taken into account.

``adj_close`` depends on a ticker's whole history and all its events
(``finsimples.adjustment``), so an ingest re-adjusts a ticker's stored history when

* one of its events is new or changed, or
* its incoming rows reach an event's far side for the first time (the ex-date's price arrives
  after the event), or fall before one of its events (a late file of old prices).

Otherwise new rows are simply after every event of their ticker and take its factor 1. The
re-adjusted rows go to the same MERGE as the incoming ones: rows whose ``adj_close`` did not
change are left alone, and each replaced row lands in the corrections audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from finsimples.adjustment import Jump, JumpRule, adjust, unexplained_jumps
from finsimples.events_table import changed_events
from finsimples.lake import Lake
from finsimples.schemas import KEY_COLUMNS

JUMP_CONTEXT_DAYS = 60
"""Calendar days of stored prices read before the incoming ones to judge a move (the calm
window of :class:`~finsimples.adjustment.JumpRule` is 20 sessions)."""


@dataclass
class Plan:
    """The rows an ingest writes, the events it stores and what it found."""

    frame: pd.DataFrame
    events: pd.DataFrame
    readjusted: list[str] = field(default_factory=list)
    jumps: list[Jump] = field(default_factory=list)


def combine_events(stored: pd.DataFrame, incoming: pd.DataFrame) -> pd.DataFrame:
    """Stored and incoming events; an incoming one replaces the stored one of its key."""
    if incoming.empty:
        return stored
    both = pd.concat([stored, incoming], ignore_index=True)
    return both.drop_duplicates(["ticker", "ex_date", "kind"], keep="last").reset_index(drop=True)


def tickers_to_readjust(
    frame: pd.DataFrame,
    events: pd.DataFrame,
    changed: pd.DataFrame,
    watermarks: Mapping[str, date],
) -> set[str]:
    """The tickers whose stored history must be adjusted again (see the module docstring)."""
    redo = set(changed["ticker"])
    if frame.empty or events.empty:
        return redo
    ex_dates = events.groupby("ticker")["ex_date"].apply(list).to_dict()
    spans = frame.groupby("ticker")["date"].agg(["min", "max"])
    for ticker, (first, last) in spans.iterrows():
        if ticker not in ex_dates or ticker in redo:
            continue
        stored = watermarks.get(str(ticker))
        low = first if stored is None else min(first, pd.Timestamp(stored))
        high = last if stored is None else max(last, pd.Timestamp(stored))
        if any(low < ex <= high for ex in ex_dates[ticker]):
            redo.add(str(ticker))
    return redo


def plan_write(
    lake: Lake,
    frame: pd.DataFrame,
    incoming_events: pd.DataFrame,
    *,
    source: str,
    rule: JumpRule | None = None,
) -> Plan:
    """The incoming rows with their adjusted closes, plus re-adjusted history; the jumps.

    Raises:
        finsimples.adjustment.AdjustmentError: an event that cannot adjust its prices.
    """
    stored = lake.events()
    events = combine_events(stored, incoming_events)
    changed = changed_events(stored, incoming_events)
    redo = tickers_to_readjust(frame, events, changed, lake.watermarks() if len(events) else {})
    if redo:
        history = lake.read_prices(sorted(redo))
        history["source"] = f"re-adjusted by {source}"
        frame = _stack(history, frame)
    if len(frame) and len(events):
        frame = adjust(frame, events)
    plan = Plan(frame.reset_index(drop=True), changed, sorted(redo))
    if len(frame):
        plan.jumps = new_jumps(lake, plan.frame, rule)
    return plan


def new_jumps(lake: Lake, frame: pd.DataFrame, rule: JumpRule | None) -> list[Jump]:
    """Unexplained jumps on the dates of ``frame``, judged with the stored prices before."""
    start = frame["date"].min().date() - timedelta(days=JUMP_CONTEXT_DAYS)
    context = lake.read_prices(frame["ticker"].unique(), start=start)
    rows = _stack(context, frame)
    keys = set(zip(frame["ticker"], frame["date"], strict=True))
    return [j for j in unexplained_jumps(rows, rule) if (j.ticker, j.date) in keys]


def _stack(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """Rows of both; ``newer``'s win on a shared (ticker, date)."""
    parts = [part for part in (older, newer) if len(part)]
    if len(parts) < 2:
        return (parts[0] if parts else newer).reset_index(drop=True)
    both = pd.concat(parts, ignore_index=True)
    return both.drop_duplicates(list(KEY_COLUMNS), keep="last").reset_index(drop=True)
