"""Ingest: read the price files users have, validate every value, merge them into the lake.

Four layouts are understood, by their header (case, accents, spaces and underscores ignored;
Portuguese names such as ``Data``, ``Fechamento`` too):

* wide, like the bundled sample: ``Date,AAPL,AMD,...`` of adjusted closes, an empty cell is
  missing data;
* one ticker's OHLCV export: ``Date,Open,High,Low,Close[,Adj Close],Volume``, the ticker from an
  option or the file name (``GOOG.csv`` is GOOG), a leading unnamed index column dropped;
* long: ``Date,Ticker|Symbol,...`` with OHLCV or adjusted-close columns;
* B3's COTAHIST fixed-width quotes file (see ``finsimples.cotahist``).

The date column is the one named like a date, the one ``--date-column`` names, or an unnamed
first column holding dates (pandas ``to_csv`` of a date-indexed frame). A file whose header
has more ``;`` than ``,`` is a Brazilian spreadsheet export: ``;`` separators, comma decimals
(``1.234,56``) and, unless ``--date-format`` says otherwise, ``DD/MM/YYYY`` dates.

Every problem is reported with its file, line, column and value, and nothing is written unless
every file is valid.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from finsimples.calendars import non_sessions
from finsimples.cotahist import is_cotahist, read_cotahist
from finsimples.lake import Lake, WriteResult
from finsimples.schemas import KEY_COLUMNS, TICKER_PATTERN, VALUE_COLUMNS
from finsimples.tickers import (
    Listing,
    make_listing,
    parse_reference,
    resolve_listings,
    strip_b3_suffix,
)

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
    "data": "date",
    "abertura": "open",
    "maxima": "high",
    "minima": "low",
    "fechamento": "close",
    "ultimo": "close",
}
_SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq", ".txt")
_ISO_DAY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")
_BR_DAY = re.compile(r"^\s*\d{2}/\d{2}/\d{4}\s*$")


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
        tickers = f"; {w.listings} ticker(s) listed or changed" if w.listings else ""
        return (
            f"{self.files} file(s), {self.rows:,} rows{span}: {w.new:,} new, "
            f"{w.replaced:,} replaced, {w.unchanged:,} unchanged; {version}{tickers}"
        )


def read_price_file(
    path: Path,
    *,
    ticker: str | None = None,
    date_format: str | None = None,
    date_column: str | None = None,
    today: date | None = None,
) -> pd.DataFrame:
    """Read and validate one price file into lake rows.

    Args:
        path: a CSV (optionally gzipped), Parquet or COTAHIST file.
        ticker: the ticker of a one-ticker OHLCV file (default: from the file name).
        date_format: a ``strftime`` format for dates that are not ISO ``YYYY-MM-DD``.
        date_column: the header of the date column, when no column is named like a date.
        today: dates after this day are rejected (default: the machine's today).

    Returns:
        Columns ``date``, ``ticker``, the value columns and ``source`` (the file name); rows
        without a price (empty cells) are left out. A COTAHIST file's frame carries
        ``attrs["exchange"]`` (``BVMF``) and ``attrs["names"]`` (ticker -> name).

    Raises:
        IngestError: with every problem found (up to a limit).
    """
    name = path.name
    names: dict[str, str] | None = None
    if is_cotahist(path):
        table = _Table(name, {c: c for c in ("date", "ticker", *VALUE_COLUMNS)})
        raw, names = read_cotahist(path, table.add)
        table.raise_problems()
        date_format = "%Y%m%d"
    else:
        try:
            raw, first_line, decimal_comma = _read_raw(path)
        except UnicodeDecodeError as exc:
            # Excel's plain "CSV" is Windows-1252 in Brazil: say what to do, not just the byte.
            problem = Problem(
                name,
                f"is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                'save it as UTF-8 (Excel: "CSV UTF-8")',
            )
            raise IngestError([problem]) from exc
        except IngestError:
            raise
        except (OSError, ValueError) as exc:
            problem = Problem(name, f"cannot be read as CSV or Parquet: {exc}")
            raise IngestError([problem]) from exc
        kinds = _column_kinds(name, list(raw.columns), date_column)
        table = _Table(name, kinds)
        if decimal_comma:
            date_format = date_format or _brazilian_date_format(raw, kinds)
            _comma_decimals(raw, kinds)
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
    result = frame[["date", "ticker", *VALUE_COLUMNS, "source"]].reset_index(drop=True)
    if names is not None:
        result.attrs.update(exchange="BVMF", names=names)
    return result


def _column_kinds(name: str, columns: list[str], date_column: str | None) -> dict[str, str | None]:
    """What each header means; ``date_column`` (``--date-column``) names the date."""
    kinds = {c: _ALIASES.get(_header_key(c)) for c in columns}
    if date_column is not None:
        if date_column not in kinds:
            raise IngestError(
                [
                    Problem(
                        name,
                        f"--date-column {date_column!r} is not a column (the header is "
                        f"{','.join(map(str, columns))!r})",
                    )
                ]
            )
        kinds = {c: None if kind == "date" else kind for c, kind in kinds.items()}
        kinds[date_column] = "date"
    if "date" not in kinds.values():
        header = ",".join(map(str, columns))
        raise IngestError(
            [
                Problem(
                    name,
                    f"missing column 'Date' (the header is {header!r}); pass --date-column NAME",
                )
            ]
        )
    return kinds


def _header_key(column: object) -> str:
    """``Máxima`` -> ``maxima``: lower case, accents and punctuation dropped."""
    plain = unicodedata.normalize("NFKD", str(column)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower())


def _brazilian_date_format(raw: pd.DataFrame, kinds: Mapping[str, str | None]) -> str | None:
    """``%d/%m/%Y`` when a Brazilian export's dates are written so, else None (ISO)."""
    column = next(c for c, kind in kinds.items() if kind == "date")
    values = raw[column].dropna().astype(str)
    return "%d/%m/%Y" if len(values) and values.str.match(_BR_DAY).all() else None


def _comma_decimals(raw: pd.DataFrame, kinds: Mapping[str, str | None]) -> None:
    """``1.234,56`` -> ``1234.56`` in every column but the date and the ticker."""
    for column, kind in kinds.items():
        if kind in ("date", "ticker"):
            continue
        values = raw[column].astype("string").str.strip()
        raw[column] = values.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)


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
) -> IngestReport:
    """Validate every file, then merge them into the lake in one commit.

    Price rows and the ``tickers`` table (each ticker's exchange and currency) are written
    together; a reference file (``ticker,exchange[,currency,name,timezone]``, no date column)
    among ``paths`` is read as listings rather than prices.

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

    Raises:
        IngestError: a file is invalid, a ticker's exchange is unknown or a row falls on a
            day its exchange was closed; nothing was written.
    """
    if not paths:
        raise IngestError([Problem("ingest", "no files given")])
    frames = []
    given: dict[str, Listing] = {}
    for path in paths:
        if not path.is_file():
            raise IngestError([Problem(str(path), "no such file")])
        if is_reference_file(path):
            given |= read_reference_file(path)
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
    )


def is_reference_file(path: Path) -> bool:
    """Whether ``path`` is a tickers reference CSV: ``ticker`` and ``exchange``, no date."""
    if not path.name.lower().endswith((".csv", ".csv.gz", ".txt")) or is_cotahist(path):
        return False
    try:
        header = {_header_key(c) for c in _first_line(path).replace(";", ",").split(",")}
    except OSError:
        return False
    return {"ticker", "exchange"} <= header and not header & {"date", "data", "datetime"}


def read_reference_file(path: Path) -> dict[str, Listing]:
    """The listings of a reference CSV (see ``finsimples.tickers.parse_reference``).

    Raises:
        IngestError: naming the line and column at fault.
    """
    try:
        return parse_reference(path.read_text(encoding="utf-8-sig"), path.name)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IngestError([Problem(path.name, str(exc))]) from exc


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

    A COTAHIST file's tickers are B3's, with the file's names.

    Raises:
        IngestError: an ambiguous ticker (naming ``--exchange``), an unknown exchange, or rows
            on holidays or weekends of their exchange (each named with its file and ticker).
    """
    given = dict(given or {})
    for frame in frames:
        if frame.attrs.get("exchange"):
            for ticker, name in frame.attrs.get("names", {}).items():
                if ticker not in given and ticker not in known:
                    given[ticker] = make_listing(ticker, frame.attrs["exchange"], name=name)
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
    problems = []
    for ticker, dates in frame.groupby("ticker")["date"]:
        listing = listings.get(str(ticker))
        if listing is None:
            continue
        closed = non_sessions(listing.exchange, (d.date() for d in dates))
        sources = frame.loc[dates.index, "source"]
        for day, why in sorted(closed.items()):
            source = str(sources[dates.dt.date == day].iloc[0])
            problems.append(
                Problem(
                    source,
                    f"{ticker} has a row on {day}, a {why} of {listing.exchange} (no trading "
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
    """
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.drop_duplicates(list(KEY_COLUMNS), keep="last")
    else:  # a reference file alone
        frame = pd.DataFrame(columns=["date", "ticker", *VALUE_COLUMNS, "source"])
    if until is not None:
        frame = select_until(frame, until)
    if next_day:
        frame = select_next_day(frame, lake.watermarks())
    result = lake.write_prices(frame, source=source, listings=listings)
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


def _read_raw(path: Path) -> tuple[pd.DataFrame, int | None, bool]:
    """The file as a frame of raw values, the line of its first data row (CSV only), and
    whether it is a Brazilian export (``;`` separators, comma decimals)."""
    if path.name.lower().endswith((".parquet", ".pq")):
        raw = pd.read_parquet(path)
        if not isinstance(raw.index, pd.RangeIndex):  # a date index saved by pandas
            raw = raw.reset_index()
        raw.columns = [str(c).strip() for c in raw.columns]
        return raw.reset_index(drop=True), None, False
    header = _first_line(path)
    with_semicolons = header.count(";") > header.count(",")
    _refuse_repeated_headers(path.name, header, ";" if with_semicolons else ",")
    raw = pd.read_csv(
        path,
        dtype=str,
        skip_blank_lines=False,
        skipinitialspace=True,
        sep=";" if with_semicolons else ",",
    )
    first = raw.columns[0] if len(raw.columns) else None
    if first is not None and (str(first).startswith("Unnamed:") or not str(first).strip()):
        # The index column pandas and R write without a name: the dates when it holds dates
        # (a date-indexed frame's to_csv) and no other column does, otherwise a row number.
        has_date = any(_ALIASES.get(_header_key(c)) == "date" for c in raw.columns[1:])
        values = raw[first].dropna().astype(str)
        if not has_date and len(values) and values.str.match(_ISO_DAY).all():
            raw = raw.rename(columns={first: "Date"})
        else:
            raw = raw.drop(columns=first)
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw.dropna(how="all"), 2, with_semicolons


def _refuse_repeated_headers(name: str, header: str, separator: str) -> None:
    """Refuse a header naming a column twice: pandas would keep both, as ``Close`` and
    ``Close.1``, and one of the two would be dropped without a word."""
    columns = [c.strip() for c in next(csv.reader([header], delimiter=separator), [])]
    seen: dict[str, int] = {}
    for position, column in enumerate(columns, start=1):
        if column and column in seen:
            problem = f"column {column!r} appears twice in the header (columns {seen[column]} "
            raise IngestError([Problem(name, problem + f"and {position}): keep one")])
        seen[column] = position


def _first_line(path: Path) -> str:
    """The header line of a CSV file, gzipped or not."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return str(handle.readline())


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
            c: strip_b3_suffix(str(c)) for c in raw.columns if c not in (date_column, "_line")
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
            frame["ticker"] = frame["ticker"].astype(str).map(strip_b3_suffix)
            bad = ~frame["ticker"].str.fullmatch(TICKER_PATTERN.pattern)
            for line, value in frame.loc[bad, ["_line", "ticker"]].itertuples(index=False):
                self.add(
                    f"is not a ticker matching {TICKER_PATTERN.pattern}",
                    line,
                    self.headers["ticker"],
                    value,
                )
            return frame
        label = strip_b3_suffix(ticker or _ticker_from_name(self.name))
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
