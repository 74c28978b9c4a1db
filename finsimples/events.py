"""Corporate events files: splits, reverse splits, bonuses, dividends, JCP and code changes.

A file is an events file when its header names a ticker, an ex-date and a kind (accents, case,
spaces and underscores ignored). Two forms are read:

* ``ticker,ex_date,kind,value`` with ISO dates and English kinds;
* the Portuguese spreadsheet export: ``;`` separators, comma decimals (``0,4512``),
  ``DD/MM/YYYY`` dates, headers such as ``Ticker;Data Ex;Tipo;Valor`` and kinds
  ``desdobramento``, ``grupamento``, ``bonificação``, ``dividendo``, ``JCP``, ``mudança de código``.

``value`` means, by kind:

==============  ======================================================  =================
kind            value                                                   example
==============  ======================================================  =================
split           shares one share becomes (> 1)                          2: 1 -> 2
reverse_split   shares that become one (> 1)                            10: 10 -> 1
bonus           new shares per share held (> 0)                         0.1: 10% more
dividend, jcp   cash per share, in the ticker's currency, as paid (> 0)  0.45
rename          the new code, from the ex-date on                        ELET3 -> AXIA3
==============  ======================================================  =================

How they adjust prices is ``finsimples.adjustment``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from finsimples.price_files import header_key
from finsimples.problems import IngestError, Problem
from finsimples.schemas import TICKER_PATTERN
from finsimples.tickers import strip_b3_suffix

EVENT_COLUMNS = ("ticker", "ex_date", "kind", "value", "new_ticker", "source")
"""An events frame: ``value`` is NaN and ``new_ticker`` set for a rename, and the reverse."""
SPLIT_KINDS = ("split", "reverse_split", "bonus")
CASH_KINDS = ("dividend", "jcp")
KINDS = (*SPLIT_KINDS, *CASH_KINDS, "rename")
_HEADERS = {
    "ticker": "ticker",
    "codigo": "ticker",
    "ativo": "ticker",
    "exdate": "ex_date",
    "dataex": "ex_date",
    "kind": "kind",
    "tipo": "kind",
    "evento": "kind",
    "value": "value",
    "valor": "value",
    "fator": "value",
}
_KINDS = {
    **{k.replace("_", ""): k for k in KINDS},
    "desdobramento": "split",
    "grupamento": "reverse_split",
    "inplit": "reverse_split",
    "bonificacao": "bonus",
    "dividendo": "dividend",
    "dividendos": "dividend",
    "jcp": "jcp",
    "juros": "jcp",
    "jurossobrecapitalproprio": "jcp",
    "mudancadecodigo": "rename",
    "mudancadeticker": "rename",
}


def is_events_file(path: Path) -> bool:
    """Whether ``path``'s header names a ticker, an ex-date and a kind."""
    if not path.name.lower().endswith((".csv", ".txt")):
        return False
    try:
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8", errors="replace")
    except OSError:
        return False
    separator = ";" if header.count(";") > header.count(",") else ","
    kinds = {_HEADERS.get(header_key(c)) for c in header.split(separator)}
    return {"ticker", "ex_date", "kind"} <= kinds


def read_events_file(path: Path) -> pd.DataFrame:
    """The events of one file, validated.

    Args:
        path: a CSV in either form of the module docstring (UTF-8, or Windows-1252 as Excel
            saves a Brazilian "CSV").

    Returns:
        Columns :data:`EVENT_COLUMNS`; ``ex_date`` datetime64[ns].

    Raises:
        IngestError: naming the line, column and value of every problem.
    """
    name = path.name
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # Excel's "CSV" in Brazil
    header = text.split("\n", 1)[0]
    brazilian = header.count(";") > header.count(",")
    reader = csv.reader(io.StringIO(text), delimiter=";" if brazilian else ",")
    columns = [c.strip() for c in next(reader, [])]
    where = {_HEADERS.get(header_key(c)): i for i, c in enumerate(columns)}
    missing = [c for c in ("ticker", "ex_date", "kind", "value") if c not in where]
    if missing:
        problem = f"missing column(s) {', '.join(missing)} (the header is {header.strip()!r})"
        raise IngestError([Problem(name, problem + "; expected ticker,ex_date,kind,value")])
    problems: list[Problem] = []
    rows = []
    del brazilian  # a comma in a value is a decimal comma in either form (see _event)
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        line = f"line {number}"

        def cell(field: str, cells: list[str] = cells) -> str:
            index = where[field]
            return cells[index].strip() if index < len(cells) else ""

        def bad(field: str, message: str, value: object, line: str = line) -> None:
            problems.append(Problem(name, message, line, columns[where[field]], value))

        row = _event(cell, bad)
        if row is not None:
            rows.append((*row, name, line))
    frame = pd.DataFrame(rows, columns=[*EVENT_COLUMNS, "_line"])
    if problems:
        raise IngestError(problems)
    duplicated = frame.duplicated(["ticker", "ex_date", "kind"], keep=False)
    for (ticker, day, kind), group in frame[duplicated].groupby(["ticker", "ex_date", "kind"]):
        lines = ", ".join(group["_line"])
        when = pd.Timestamp(day).date()  # type: ignore[arg-type]
        problems.append(Problem(name, f"{kind} of {ticker} on {when} twice ({lines})"))
    if problems:
        raise IngestError(problems)
    frame["ex_date"] = frame["ex_date"].astype("datetime64[ns]")
    return frame[list(EVENT_COLUMNS)].reset_index(drop=True)


Cell = Callable[[str], str]
Bad = Callable[[str, str, object], None]


def _event(cell: Cell, bad: Bad) -> tuple[str, object, str, float, str | None] | None:
    """One row's (ticker, ex_date, kind, value, new_ticker), or None after reporting."""
    ok = True
    ticker = strip_b3_suffix(cell("ticker"))
    if not TICKER_PATTERN.fullmatch(ticker):
        bad("ticker", f"is not a ticker matching {TICKER_PATTERN.pattern}", cell("ticker"))
        ok = False
    written = cell("ex_date")
    day = pd.to_datetime(
        written, format="%d/%m/%Y" if "/" in written else "%Y-%m-%d", errors="coerce"
    )
    if pd.isna(day):
        bad("ex_date", "is not a date (expected YYYY-MM-DD or DD/MM/YYYY)", written)
        ok = False
    kind = _KINDS.get(header_key(cell("kind")))
    if kind is None:
        expected = ", ".join(KINDS) + " (or desdobramento, grupamento, bonificação, dividendo, JCP)"
        bad("kind", f"is not an event kind (expected {expected})", cell("kind"))
        return None
    text = cell("value")
    if kind == "rename":
        new = strip_b3_suffix(text)
        if not TICKER_PATTERN.fullmatch(new) or new == ticker:
            bad("value", "is not the new code of a rename (expected another ticker)", text)
            return None
        return (ticker, day, kind, math.nan, new) if ok else None
    # ``0,45`` and ``1.234,56`` (a Brazilian sheet) or ``0.45``: a dot alone is a decimal point.
    number = text.replace(".", "").replace(",", ".") if "," in text else text
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    low, expected = (1.0, "> 1") if kind in ("split", "reverse_split") else (0.0, "> 0")
    if not (math.isfinite(value) and value > low):
        what = "a cash amount per share" if kind in CASH_KINDS else f"a {kind} factor"
        bad("value", f"is not {what} (expected a number {expected})", text)
        return None
    return (ticker, day, kind, value, None) if ok else None
