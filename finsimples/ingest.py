"""Ingest: validate price files and merge them into the lake.

The file readers are ``finsimples.price_files`` (price and tickers reference files, their
rows validated by ``finsimples.price_rows``) and ``finsimples.events``; this job places each
ticker on its exchange, selects replayed days and merges everything in one commit. Nothing is
written unless every file is valid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd

from finsimples.adjustment import AdjustmentError, Jump, JumpRule
from finsimples.calendars import non_sessions
from finsimples.events import is_events_file, read_events_file
from finsimples.events_table import empty_events
from finsimples.lake import Lake, WriteResult
from finsimples.price_files import (
    is_reference_file,
    read_price_file,
    read_reference_file,
    skipped_summary,
)
from finsimples.problems import IngestError, Problem
from finsimples.readjust import plan_write
from finsimples.schemas import KEY_COLUMNS, VALUE_COLUMNS
from finsimples.tickers import Listing, make_listing, resolve_listings

__all__ = [
    "IngestError",
    "IngestReport",
    "Problem",
    "ingest_files",
    "ingest_frames",
    "place_tickers",
    "read_price_file",
    "select_next_day",
    "select_until",
]


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ingest: files read, rows selected, and what the lake did with them."""

    files: int
    rows: int
    write: WriteResult
    first_date: date | None
    last_date: date | None
    compacted_version: int | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    """COTAHIST quotes of markets other than the round-lot cash market, per TPMERC code."""
    events: int = 0
    """Corporate events new or changed in the events table."""
    readjusted: list[str] = field(default_factory=list)
    """Tickers whose history was adjusted again for their events."""
    jumps: list[Jump] = field(default_factory=list)
    """One-day moves that look like a split no event explains (``finsimples.adjustment``)."""

    def summary(self) -> str:
        """One line for people: rows new / replaced / unchanged and the lake version."""
        w = self.write
        span = f" ({self.first_date} to {self.last_date})" if self.first_date else ""
        version = f"lake version {w.version}" if w.version else "lake unchanged"
        tickers = f"; {w.listings} ticker(s) listed or changed" if w.listings else ""
        skipped = f"; {skipped_summary(self.skipped)}" if self.skipped else ""
        events = f"; {self.events} corporate event(s) stored" if self.events else ""
        if self.readjusted:
            events += f"; history re-adjusted for {', '.join(self.readjusted)}"
        jumps = "".join(
            f"\nunexplained jump: {jump}; ingest its event, or {jump.ticker} stays out of "
            "training and forecasts"
            for jump in self.jumps
        )
        return (
            f"{self.files} file(s), {self.rows:,} rows{span}: {w.new:,} new, "
            f"{w.replaced:,} replaced, {w.unchanged:,} unchanged; {version}{tickers}{skipped}"
            f"{events}{jumps}"
        )


def select_until(frame: pd.DataFrame, until: date) -> pd.DataFrame:
    """Rows dated on or before ``until``: replay a file up to a day."""
    return frame[frame["date"] <= pd.Timestamp(until)]


def select_next_day(frame: pd.DataFrame, watermarks: Mapping[str, date]) -> pd.DataFrame:
    """Rows of the first trading day after the lake's data, and any gap before it.

    The day is the earliest date in ``frame`` after the latest watermark of the frame's
    tickers; each ticker gets its rows after its own watermark up to that day, so a ticker that
    fell behind catches up. Replaying a file one day at a time simulates the daily feed.
    """
    tickers = frame["ticker"].unique()
    marks = [watermarks[t] for t in tickers if t in watermarks]
    latest = pd.Timestamp(max(marks)) if marks else pd.Timestamp.min
    later = frame.loc[frame["date"] > latest, "date"]
    if later.empty:
        return frame.iloc[0:0]
    day = later.min()
    own = frame["ticker"].map({t: pd.Timestamp(d) for t, d in watermarks.items()})
    return frame[(frame["date"] > own.fillna(pd.Timestamp.min)) & (frame["date"] <= day)]


def ingest_files(
    lake: Lake,
    paths: Sequence[Path],
    *,
    ticker: str | None = None,
    exchange: str | None = None,
    currency: str | None = None,
    until: date | None = None,
    next_day: bool = False,
    date_format: str | None = None,
    date_column: str | None = None,
    today: date | None = None,
    on_file: Callable[[Path], None] | None = None,
    jump_rule: JumpRule | None = None,
) -> IngestReport:
    """Validate every file, then merge them into the lake in one commit.

    Price rows and the ``tickers`` table (each ticker's exchange and currency) are written
    together; a reference file (``ticker,exchange[,currency,name,timezone]``, no date column)
    among ``paths`` is read as listings rather than prices, and an events file
    (``ticker,ex_date,kind,value``: ``finsimples.events``) as corporate events.

    Args:
        lake: where the rows go.
        paths: the files; when two hold the same (ticker, date), the later file wins.
        ticker: ticker of one-ticker files (see :func:`read_price_file`).
        exchange: ``--exchange``: the MIC every ticker of these files trades on.
        currency: ``--currency``: the prices' currency (default: the exchange's).
        until: replay: ingest only rows dated on or before this day.
        next_day: replay: ingest only the next trading day after the lake's data.
        date_format: ``strftime`` format of non-ISO dates.
        date_column: header of the date column (``--date-column``).
        today: rows dated after it are rejected (default: today).
        on_file: called after each file is read (progress bars).
        jump_rule: what counts as an unexplained split (default: ``JumpRule()``).

    Raises:
        IngestError: a file is invalid, a ticker's exchange is unknown or a row falls on a
            day its exchange was closed; nothing was written.
    """
    if not paths:
        raise IngestError([Problem("ingest", "no files given")])
    frames = []
    events: list[pd.DataFrame] = []
    given: dict[str, Listing] = {}
    for path in paths:
        if not path.is_file():
            raise IngestError([Problem(str(path), "no such file")])
        if is_reference_file(path):
            given |= read_reference_file(path)
        elif is_events_file(path):
            events.append(read_events_file(path))
        else:
            frames.append(
                read_price_file(
                    path,
                    ticker=ticker,
                    date_format=date_format,
                    date_column=date_column,
                    today=today,
                )
            )
        if on_file:
            on_file(path)
    listings = place_tickers(
        frames, lake.listings(), given=given, exchange=exchange, currency=currency
    )
    return ingest_frames(
        lake,
        frames,
        source=", ".join(p.name for p in paths),
        until=until,
        next_day=next_day,
        listings=listings,
        events=pd.concat(events, ignore_index=True) if events else None,
        jump_rule=jump_rule,
    )


def place_tickers(
    frames: Sequence[pd.DataFrame],
    known: Mapping[str, Listing],
    *,
    given: Mapping[str, Listing] | None = None,
    exchange: str | None = None,
    currency: str | None = None,
) -> dict[str, Listing]:
    """Each ticker's listing (``finsimples.tickers.resolve_listings``), then a check that no
    row falls on a day its exchange was closed.

    A COTAHIST file's tickers are B3's, with the file's names and share kinds (a ticker the
    lake lists without its share kind gets it).

    Raises:
        IngestError: an ambiguous ticker (naming ``--exchange``), an unknown exchange, or rows
            on holidays or weekends of their exchange (each named with its file and ticker).
    """
    given = dict(given or {})
    for frame in frames:
        if frame.attrs.get("exchange"):
            kinds = frame.attrs.get("kinds", {})
            for ticker, name in frame.attrs.get("names", {}).items():
                kind = kinds.get(ticker, "")
                if ticker not in given and ticker not in known:
                    given[ticker] = make_listing(
                        ticker, frame.attrs["exchange"], name=name, share_kind=kind
                    )
                elif ticker not in given and kind and known[ticker].share_kind != kind:
                    # A listing stored before share kinds were kept (or a kind B3 changed).
                    given[ticker] = replace(known[ticker], share_kind=kind)
    tickers = {t for frame in frames for t in frame["ticker"].unique()}
    try:
        listings = resolve_listings(
            tickers,
            exchange_option=exchange,
            currency_option=currency,
            given=given,
            known=known,
        )
    except ValueError as exc:  # AmbiguousTickerError, UnknownExchangeError
        raise IngestError([Problem("ingest", str(exc))]) from exc
    problems = [p for frame in frames for p in closed_day_problems(frame, listings)]
    if problems:
        raise IngestError(problems)
    # Listings given in a reference file are kept even for tickers without prices yet.
    return {**{t: v for t, v in given.items() if t not in listings}, **listings}


def closed_day_problems(frame: pd.DataFrame, listings: Mapping[str, Listing]) -> list[Problem]:
    """Rows dated on a day their ticker's exchange did not trade: a sign of a bad file
    (shifted dates, a time zone applied twice, a filled-in calendar)."""
    # Plain columns: a frame's ``attrs`` (a COTAHIST file's names) are deep-copied by every
    # slice pandas makes, which cost 40 s on a year of B3's 1,500 series.
    rows = pd.DataFrame(
        {"ticker": frame["ticker"].to_numpy(), "date": frame["date"].to_numpy()},
    )
    rows["exchange"] = rows["ticker"].map({t: listing.exchange for t, listing in listings.items()})
    problems = []
    # One calendar look-up per exchange over its distinct days, not one per ticker.
    for mic, days in rows.dropna(subset=["exchange"]).groupby("exchange")["date"]:
        closed = non_sessions(str(mic), (d.date() for d in days.unique()))
        if not closed:
            continue
        wrong = rows[(rows["exchange"] == mic) & rows["date"].dt.date.isin(set(closed))]
        for (ticker, stamp), index in wrong.groupby(["ticker", "date"]).groups.items():
            day = pd.Timestamp(stamp).date()
            problems.append(
                Problem(
                    str(frame["source"].iloc[index[0]]),
                    f"{ticker} has a row on {day}, a {closed[day]} of {mic} (no trading "
                    "session): the file's dates are wrong; fix or remove those rows",
                    column="date",
                    value=str(day),
                )
            )
    return problems


def ingest_frames(
    lake: Lake,
    frames: Sequence[pd.DataFrame],
    *,
    source: str,
    until: date | None = None,
    next_day: bool = False,
    listings: Mapping[str, Listing] | None = None,
    events: pd.DataFrame | None = None,
    jump_rule: JumpRule | None = None,
) -> IngestReport:
    """Merge validated files (:func:`read_price_file` output) into the lake in one commit.

    Args:
        lake: where the rows go.
        frames: one per file; when two hold the same (ticker, date), the later one wins.
        source: recorded in the lake's commit (the file names).
        until: replay: only rows dated on or before this day.
        next_day: replay: only the next trading day after the lake's data.
        listings: rows for the ``tickers`` table, written in the same commit
            (:func:`place_tickers`).
        events: corporate events (``finsimples.events.read_events_file``): stored after the
            prices, which are adjusted for them (``finsimples.readjust``).
        jump_rule: what counts as an unexplained split (``finsimples.adjustment``).

    Raises:
        IngestError: an event cannot adjust its ticker's prices; nothing was written.
    """
    skipped: Counter[str] = Counter()
    for one in frames:
        skipped.update(one.attrs.get("skipped", {}))
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.drop_duplicates(list(KEY_COLUMNS), keep="last")
        frame.attrs = {}  # read above; pandas would deep-copy them at every slice below
    else:  # a reference or events file alone
        frame = pd.DataFrame(columns=["ticker", *VALUE_COLUMNS, "source"]).assign(
            date=pd.Series(dtype="datetime64[ns]")
        )
    if until is not None:
        frame = select_until(frame, until)
    if next_day:
        frame = select_next_day(frame, lake.watermarks())
    incoming = events if events is not None else empty_events()
    try:
        plan = plan_write(lake, frame, incoming, source=source, rule=jump_rule)
    except AdjustmentError as exc:
        raise IngestError([Problem("events", str(exc))]) from exc
    # Prices first: should the events commit fail, the next ingest finds them new again and
    # re-adjusts; the other way round, stored events would never re-adjust the prices.
    result = lake.write_prices(plan.frame, source=source, listings=listings)
    stored, _ = lake.write_events(plan.events, source=source)
    compacted = lake.compact() if result.version else None
    return IngestReport(
        files=len(frames) + (events is not None),
        rows=len(frame),
        write=result,
        first_date=frame["date"].min().date() if len(frame) else None,
        last_date=frame["date"].max().date() if len(frame) else None,
        compacted_version=compacted.version if compacted else None,
        events=stored,
        readjusted=plan.readjusted,
        jumps=plan.jumps,
        skipped=dict(sorted(skipped.items())),
    )
