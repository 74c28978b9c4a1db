"""Price files: read the files users have into validated lake rows.

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

Every problem is reported with its file, line, column and value (``finsimples.problems``).
This module recognizes a file's layout and reads it raw; ``finsimples.price_rows`` reshapes
and validates its rows.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from finsimples.cotahist import Quotes, is_cotahist, market_name, read_cotahist
from finsimples.price_rows import ISO_DAY, FileTable
from finsimples.problems import IngestError, Problem
from finsimples.schemas import VALUE_COLUMNS
from finsimples.tickers import Listing, parse_reference

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
_BR_DAY = re.compile(r"^\s*\d{2}/\d{2}/\d{4}\s*$")


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
        ``attrs``: ``exchange`` (``BVMF``), ``names`` and ``kinds`` (ticker -> name, share
        kind) and ``skipped`` (quotes of other markets per TPMERC code).

    Raises:
        IngestError: with every problem found (up to a limit).
    """
    name = path.name
    attrs: dict[str, object] = {}
    if is_cotahist(path):
        table = FileTable(name, {c: c for c in ("date", "ticker", *VALUE_COLUMNS)})
        quotes = read_cotahist(path, table.add)
        table.raise_problems()
        raw, attrs = quotes.frame, quotes_attrs(quotes)
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
        table = FileTable(name, kinds)
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
    result.attrs.update(attrs)
    return result


def quotes_attrs(quotes: Quotes) -> dict[str, object]:
    """What a COTAHIST file's frame carries beside its rows (see :func:`read_price_file`)."""
    return {
        "exchange": "BVMF",
        "names": quotes.names,
        "kinds": quotes.kinds,
        "skipped": quotes.skipped,
    }


def skipped_summary(skipped: Mapping[str, int]) -> str:
    """``3 quotes of other markets skipped (020 (fractional lots): 1, 070 (calls): 2)``."""
    if not skipped:
        return ""
    parts = ", ".join(f"{market_name(code)}: {n:,}" for code, n in sorted(skipped.items()))
    return f"{sum(skipped.values()):,} quotes of other markets skipped ({parts})"


def _column_kinds(name: str, columns: list[str], date_column: str | None) -> dict[str, str | None]:
    """What each header means; ``date_column`` (``--date-column``) names the date."""
    kinds = {c: _ALIASES.get(header_key(c)) for c in columns}
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


def header_key(column: object) -> str:
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
    header = first_line(path)
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
        has_date = any(_ALIASES.get(header_key(c)) == "date" for c in raw.columns[1:])
        values = raw[first].dropna().astype(str)
        if not has_date and len(values) and values.str.match(ISO_DAY).all():
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


def first_line(path: Path) -> str:
    """The header line of a CSV file, gzipped or not."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return str(handle.readline())


def _line_labels(index: pd.Index, first_line: int | None) -> pd.Series:
    if first_line is None:
        return pd.Series([f"row {i + 1}" for i in index], index=index)
    return pd.Series([f"line {i + first_line}" for i in index], index=index)


def is_reference_file(path: Path) -> bool:
    """Whether ``path`` is a tickers reference CSV: ``ticker`` and ``exchange``, no date."""
    if not path.name.lower().endswith((".csv", ".csv.gz", ".txt")) or is_cotahist(path):
        return False
    try:
        header = {header_key(c) for c in first_line(path).replace(";", ",").split(",")}
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
