"""One price file's rows, reshaped from its layout (wide, long, one ticker's OHLCV) into lake
rows and validated: dates, prices, volumes, tickers and duplicates.

``finsimples.price_files`` reads a file and recognizes its layout; every problem found here
names the file, line, column and value (``finsimples.problems``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import cast

import numpy as np
import pandas as pd

from finsimples.problems import IngestError, Problem
from finsimples.schemas import KEY_COLUMNS, TICKER_PATTERN, VALUE_COLUMNS
from finsimples.tickers import strip_b3_suffix

SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq", ".txt")
ISO_DAY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")


def ticker_from_name(name: str) -> str:
    """A file's name without its price-file suffix: ``GOOG.csv.gz`` is ``GOOG``."""
    lowered = name.lower()
    suffix = next((s for s in SUFFIXES if lowered.endswith(s)), "")
    return name[: len(name) - len(suffix)]


class FileTable:
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
        label = strip_b3_suffix(ticker or ticker_from_name(self.name))
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
            day = raw.astype("string").str.extract(ISO_DAY, expand=False)
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
