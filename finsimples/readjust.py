"""What an ingest writes once corporate events are taken into account.

``adj_close`` depends on a ticker's whole history and all its events
(``finsimples.adjustment``), so an ingest re-adjusts a ticker's stored history when

* one of its events is new or changed, or it is the new code of a rename whose old code's
  history (new or changed) it takes, or
* its incoming rows reach an event's far side for the first time (the ex-date's price arrives
  after the event), or fall before one of its events (a late file of old prices).

A rename (``ELET3`` -> ``AXIA3`` from an ex-date) copies the old code's rows dated before the
ex-date to the new code (where the new code has no row of its own that day), and the old code's
events before the ex-date adjust the new code's series too: the company keeps its history. The
old code's rows stay under it (the tickers it is known by in old files); training leaves renamed
codes out, since their history lives on under the new one.

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
    frame, renamed = carry_renamed_history(lake, frame, events, changed, source)
    redo |= renamed
    events = with_inherited_events(events)
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


def renames(events: pd.DataFrame) -> pd.DataFrame:
    """The rename events: ``ticker`` (old code), ``ex_date``, ``new_ticker``."""
    return events[events["kind"] == "rename"][["ticker", "ex_date", "new_ticker"]]


def carry_renamed_history(
    lake: Lake, frame: pd.DataFrame, events: pd.DataFrame, changed: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, set[str]]:
    """``frame`` with the old code's rows before each rename copied to the new code, when the
    rename is new or changed or the old code's incoming rows fall before it; the new codes."""
    fresh = set(renames(changed).itertuples(index=False, name=None)) if len(changed) else set()
    carried: set[str] = set()
    for old, ex_date, new in renames(events).itertuples(index=False, name=None):
        incoming = frame[(frame["ticker"] == old) & (frame["date"] < ex_date)]
        if (old, ex_date, new) not in fresh and incoming.empty:
            continue
        before = pd.Timestamp(ex_date) - pd.Timedelta(days=1)
        rows = _stack(lake.read_prices([old], end=before.date()), incoming)
        rows = rows[rows["date"] < ex_date].assign(
            ticker=new, source=f"renamed from {old} by {source}"
        )
        # The new code's own rows, stored or incoming, win on a day both have.
        own = lake.read_prices([new], start=rows["date"].min().date()) if len(rows) else rows
        taken = set(own["date"]) | set(frame.loc[frame["ticker"] == new, "date"])
        frame = _stack(rows[~rows["date"].isin(taken)], frame)
        carried.add(str(new))
    return frame, carried


def with_inherited_events(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` plus, for each rename, the old code's other events before its ex-date under
    the new code (they adjust the history the new code took)."""
    extra = []
    for old, ex_date, new in renames(events).itertuples(index=False, name=None):
        mine = events[
            (events["ticker"] == old) & (events["kind"] != "rename") & (events["ex_date"] < ex_date)
        ]
        extra.append(mine.assign(ticker=new))
    if not extra:
        return events
    return combine_events(pd.concat(extra, ignore_index=True), events)


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
