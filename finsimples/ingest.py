"""Ingest: read the price files users have, validate every value, merge them into the lake.

Three layouts are understood, by their header (case, spaces and underscores ignored):

* wide, like the bundled sample: ``Date,AAPL,AMD,...`` of adjusted closes, an empty cell is
  missing data;
* one ticker's OHLCV export: ``Date,Open,High,Low,Close[,Adj Close],Volume``, the ticker from an
  option or the file name (``GOOG.csv`` is GOOG), a leading unnamed index column dropped;
* long: ``Date,Ticker|Symbol,...`` with OHLCV or adjusted-close columns.

Every problem is reported with its file, line, column and value, and nothing is written unless
every file is valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from finsimples.lake import Lake, WriteResult
from finsimples.schemas import KEY_COLUMNS, TICKER_PATTERN, VALUE_COLUMNS

MAX_REPORTED_PROBLEMS = 20
_ALIASES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "ticker": "ticker",
    "symbol": "ticker",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
}
_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq", ".txt")
_ISO_DAY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Problem:
    """One invalid value: where it is, what it is and what was expected."""

    file: str
    message: str
    line: str | None = None
    column: str | None = None
    value: object = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (self.file, self.line, self.column and f"column {self.column!r}")
            if part
        )
        value = "" if self.value is None else f"value {self.value!r}: "
        return f"{where}: {value}{self.message}"


class IngestError(ValueError):
    """Invalid input; the lake was left unchanged."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = [str(p) for p in self.problems[:MAX_REPORTED_PROBLEMS]]
        more = len(self.problems) - len(shown)
        super().__init__(
            "\n".join(shown + ([f"... and {more} more problems"] if more else []))
            + "\nnothing was written to the lake"
        )


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ingest: files read, rows selected, and what the lake did with them."""

    files: int
    rows: int
    write: WriteResult
    first_date: date | None
    last_date: date | None
    compacted_version: int | None = None

    def summary(self) -> str:
        """One line for people: rows new / replaced / unchanged and the lake version."""
        w = self.write
        span = f" ({self.first_date} to {self.last_date})" if self.first_date else ""
        version = f"lake version {w.version}" if w.version else "lake unchanged"
        return (
            f"{self.files} file(s), {self.rows:,} rows{span}: {w.new:,} new, "
            f"{w.replaced:,} replaced, {w.unchanged:,} unchanged; {version}"
        )


def read_price_file(
    path: Path,
    *,
    ticker: str | None = None,
    date_format: str | None = None,
    today: date | None = None,
) -> pd.DataFrame:
    """Read and validate one price file into lake rows.

    Args:
        path: a CSV (optionally gzipped) or Parquet file.
        ticker: the ticker of a one-ticker OHLCV file (default: from the file name).
        date_format: a ``strftime`` format for dates that are not ISO ``YYYY-MM-DD``.
        today: dates after this day are rejected (default: the machine's today).

    Returns:
        Columns ``date``, ``ticker``, the value columns and ``source`` (the file name); rows
        without a price (empty cells) are left out.

    Raises:
        IngestError: with every problem found (up to a limit).
    """
    name = path.name
    try:
        raw, first_line = _read_raw(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise IngestError([Problem(name, f"cannot be read as CSV or Parquet: {exc}")]) from exc
    kinds = {c: _ALIASES.get(re.sub(r"[^a-z0-9]", "", str(c).lower())) for c in raw.columns}
    if "date" not in kinds.values():
        header = ",".join(map(str, raw.columns))
        raise IngestError([Problem(name, f"missing column 'Date' (the header is {header!r})")])
    table = _Table(name, kinds)
    raw["_line"] = _line_labels(raw.index, first_line)
    frame = table.from_wide(raw) if table.layout == "wide" else table.from_columns(raw, ticker)
    table.raise_problems()
    frame = frame.reset_index(drop=True)
    frame["date"] = table.parse_dates(frame, date_format)
    table.check_values(frame, today or date.today())
    table.raise_problems()
    frame = frame[frame["adj_close"].notna()]
    table.check_duplicates(frame)
    frame["source"] = name
    return frame[["date", "ticker", *VALUE_COLUMNS, "source"]].reset_index(drop=True)


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
    until: date | None = None,
    next_day: bool = False,
    date_format: str | None = None,
    today: date | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> IngestReport:
    """Validate every file, then merge them into the lake in one commit.

    Args:
        lake: where the rows go.
        paths: the files; when two hold the same (ticker, date), the later file wins.
        ticker: ticker of one-ticker files (see :func:`read_price_file`).
        until: replay: ingest only rows dated on or before this day.
        next_day: replay: ingest only the next trading day after the lake's data.
        date_format: ``strftime`` format of non-ISO dates.
        today: rows dated after it are rejected (default: today).
        on_file: called after each file is read (progress bars).

    Raises:
        IngestError: a file is invalid; nothing was written.
    """
    if not paths:
        raise IngestError([Problem("ingest", "no files given")])
    frames = []
    for path in paths:
        if not path.is_file():
            raise IngestError([Problem(str(path), "no such file")])
        frames.append(read_price_file(path, ticker=ticker, date_format=date_format, today=today))
        if on_file:
            on_file(path)
    return ingest_frames(
        lake, frames, source=", ".join(p.name for p in paths), until=until, next_day=next_day
    )


def ingest_frames(
    lake: Lake,
    frames: Sequence[pd.DataFrame],
    *,
    source: str,
    until: date | None = None,
    next_day: bool = False,
) -> IngestReport:
    """Merge validated files (:func:`read_price_file` output) into the lake in one commit.

    Args:
        lake: where the rows go.
        frames: one per file; when two hold the same (ticker, date), the later one wins.
        source: recorded in the lake's commit (the file names).
        until: replay: only rows dated on or before this day.
        next_day: replay: only the next trading day after the lake's data.
    """
    frame = pd.concat(frames, ignore_index=True).drop_duplicates(list(KEY_COLUMNS), keep="last")
    if until is not None:
        frame = select_until(frame, until)
    if next_day:
        frame = select_next_day(frame, lake.watermarks())
    result = lake.write_prices(frame, source=source)
    compacted = lake.compact() if result.version else None
    return IngestReport(
        files=len(frames),
        rows=len(frame),
        write=result,
        first_date=frame["date"].min().date() if len(frame) else None,
        last_date=frame["date"].max().date() if len(frame) else None,
        compacted_version=compacted.version if compacted else None,
    )


# --- parsing ---------------------------------------------------------------------------------


def _read_raw(path: Path) -> tuple[pd.DataFrame, int | None]:
    """The file as a frame of raw values, and the line of its first data row (CSV only)."""
    if path.name.lower().endswith((".parquet", ".pq")):
        raw = pd.read_parquet(path)
        if not isinstance(raw.index, pd.RangeIndex):  # a date index saved by pandas
            raw = raw.reset_index()
        raw.columns = [str(c).strip() for c in raw.columns]
        return raw.reset_index(drop=True), None
    raw = pd.read_csv(path, dtype=str, skip_blank_lines=False, skipinitialspace=True)
    first = raw.columns[0] if len(raw.columns) else None
    if first is not None and (str(first).startswith("Unnamed:") or not str(first).strip()):
        raw = raw.drop(columns=first)  # the index column pandas and R write without a name
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw.dropna(how="all"), 2


def _line_labels(index: pd.Index, first_line: int | None) -> pd.Series:
    if first_line is None:
        return pd.Series([f"row {i + 1}" for i in index], index=index)
    return pd.Series([f"line {i + first_line}" for i in index], index=index)


def _ticker_from_name(name: str) -> str:
    lowered = name.lower()
    suffix = next((s for s in _SUFFIXES if lowered.endswith(s)), "")
    return name[: len(name) - len(suffix)]


class _Table:
    """Validation of one file's rows; collects problems that name line, column and value.

    Frames carry a ``_line`` column (``line 14`` in a CSV, ``row 13`` in a Parquet file) from
    the raw file on, so every problem can say where it is after reshaping.
    """

    def __init__(self, name: str, kinds: Mapping[str, str | None]) -> None:
        self.name = name
        self.kinds = kinds
        self.headers = {kind: str(column) for column, kind in kinds.items() if kind}
        self.problems: list[Problem] = []
        found = set(kinds.values())
        self.layout = (
            "long" if "ticker" in found else "ohlcv" if found & set(VALUE_COLUMNS) else "wide"
        )

    def add(
        self, message: str, line: str | None = None, column: str | None = None, value: object = None
    ) -> None:
        self.problems.append(Problem(self.name, message, line, column, value))

    def raise_problems(self) -> None:
        if self.problems:
            raise IngestError(self.problems)

    def from_wide(self, raw: pd.DataFrame) -> pd.DataFrame:
        date_column = next(c for c, kind in self.kinds.items() if kind == "date")
        tickers = {
            c: str(c).strip().upper() for c in raw.columns if c not in (date_column, "_line")
        }
        for column, ticker in tickers.items():
            if not TICKER_PATTERN.match(ticker):
                self.add(
                    f"is not a ticker matching {TICKER_PATTERN.pattern}",
                    column=str(column),
                    value=str(column),
                )
        renames: dict[str, str] = {date_column: "date", **tickers}
        long = raw.rename(columns=renames).melt(
            id_vars=["date", "_line"], var_name="ticker", value_name="adj_close"
        )
        headers = {ticker: str(column) for column, ticker in tickers.items()}
        long["_header_adj_close"] = long["ticker"].map(headers)
        for column in ("open", "high", "low", "close", "volume"):
            long[column] = np.nan
        return long

    def from_columns(self, raw: pd.DataFrame, ticker: str | None) -> pd.DataFrame:
        frame = raw.rename(columns={c: kind for c, kind in self.kinds.items() if kind})
        if "close" not in frame and "adj_close" not in frame:
            self.add(
                "missing column 'Close' (or 'Adj Close'); expected "
                "Date,Open,High,Low,Close[,Adj Close],Volume"
            )
            return frame
        for column in VALUE_COLUMNS:
            if column not in frame:
                frame[column] = np.nan
        if self.layout == "long":
            frame["ticker"] = frame["ticker"].astype(str).str.strip().str.upper()
            bad = ~frame["ticker"].str.fullmatch(TICKER_PATTERN.pattern)
            for line, value in frame.loc[bad, ["_line", "ticker"]].itertuples(index=False):
                self.add(
                    f"is not a ticker matching {TICKER_PATTERN.pattern}",
                    line,
                    self.headers["ticker"],
                    value,
                )
            return frame
        label = (ticker or _ticker_from_name(self.name)).strip().upper()
        if not TICKER_PATTERN.match(label):
            origin = "--ticker" if ticker else "the file name"
            self.add(
                f"the ticker from {origin} does not match {TICKER_PATTERN.pattern}; "
                "pass a valid --ticker",
                value=label,
            )
        frame["ticker"] = label
        return frame

    def parse_dates(self, frame: pd.DataFrame, date_format: str | None) -> pd.Series:
        raw = frame["date"]
        if pd.api.types.is_datetime64_any_dtype(raw):
            parsed = raw.dt.tz_localize(None) if raw.dt.tz is not None else raw
        elif date_format:
            parsed = pd.to_datetime(raw, format=date_format, errors="coerce")
        elif raw.map(lambda v: isinstance(v, date)).all():
            parsed = pd.to_datetime(raw)
        else:
            # The day as written, even with a time and a UTC offset after it (yfinance).
            day = raw.astype("string").str.extract(_ISO_DAY, expand=False)
            parsed = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
        expected = f"format {date_format!r}" if date_format else "YYYY-MM-DD, or pass --date-format"
        for line, value in frame.loc[parsed.isna(), ["_line", "date"]].itertuples(index=False):
            self.add(
                f"is not a date (expected {expected})",
                line,
                self.headers["date"],
                None if pd.isna(value) else value,
            )
        return parsed.dt.normalize().astype("datetime64[ns]")

    def check_values(self, frame: pd.DataFrame, today: date) -> None:
        for column in VALUE_COLUMNS:
            raw = frame[column]
            values = pd.to_numeric(raw, errors="coerce").astype("float64")
            not_number = raw.notna() & ~np.isfinite(values)
            if column == "volume":
                bad, why = values < 0, "is not a volume (expected a number >= 0)"
            else:
                bad, why = values <= 0, "is not a positive price"
            headers = frame.get(f"_header_{column}", self.headers.get(column, column))
            wrong = frame.assign(_value=raw, _header=headers, _nan=not_number)[not_number | bad]
            for line, header, value, nan in wrong[
                ["_line", "_header", "_value", "_nan"]
            ].itertuples(index=False):
                self.add("is not a number" if nan else why, line, header, value)
            frame[column] = values
        frame["adj_close"] = frame["adj_close"].fillna(frame["close"])
        future = frame["date"] > pd.Timestamp(today)
        for line, day in frame.loc[future, ["_line", "date"]].itertuples(index=False):
            self.add(
                f"is in the future (today is {today})", line, self.headers["date"], str(day.date())
            )

    def check_duplicates(self, frame: pd.DataFrame) -> None:
        duplicated = frame.duplicated(list(KEY_COLUMNS), keep=False)
        if not duplicated.any():
            return
        for (ticker, day), group in frame[duplicated].groupby(list(KEY_COLUMNS)):
            lines = ", ".join(group["_line"])
            self.add(
                f"duplicate rows for ticker {ticker} on {cast(pd.Timestamp, day).date()} ({lines})",
                column=self.headers["date"],
            )
        self.raise_problems()
