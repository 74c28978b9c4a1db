"""B3's COTAHIST files: the official historical daily quotes, one fixed-width line per quote.

The layout is B3's "Séries Históricas" (``SeriesHistoricas_Layout.pdf``): every line is 245
characters; positions below are 1-based and inclusive, as the layout writes them.

====  =========  ========  ============================================================
type  field      columns   read as
====  =========  ========  ============================================================
00    TIPREG     1-2       ``00``: the header; ``NOMARQ`` at 3-15 starts with ``COTAHIST``
01    TIPREG     1-2       ``01``: one quote
01    DATPRE     3-10      the session, ``AAAAMMDD``
01    CODNEG     13-24     the ticker (``PETR4``), space-padded
01    TPMERC     25-27     market; only ``010`` (cash market, round lots) is read
01    NOMRES     28-39     short company name (kept as the ticker's name)
01    ESPECI     40-49     share kind (``ON``, ``PN``, ``UNT``, ``CI``)
01    PREABE     57-69     open, 2 implied decimals
01    PREMAX     70-82     high, 2 implied decimals
01    PREMIN     83-95     low, 2 implied decimals
01    PREULT     109-121   close (last trade), 2 implied decimals
01    QUATOT     153-170   shares traded (the volume)
01    FATCOT     211-217   quote factor: prices are per this many shares (1 or 1000)
99    TOTREG     32-42     lines in the file, header and trailer included
====  =========  ========  ============================================================

Prices are as traded, not adjusted for dividends or splits: ``adj_close`` is the close.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

RECORD_LENGTH = 245
HEADER_MARK = "00COTAHIST"
CASH_MARKET = "010"


def is_cotahist(path: Path) -> bool:
    """Whether the file starts with a COTAHIST header record."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(HEADER_MARK)) == HEADER_MARK.encode()
    except OSError:
        return False


def _field(line: str, first: int, last: int) -> str:
    return line[first - 1 : last]


def read_cotahist(
    path: Path, problem: Callable[[str, str | None, str | None, object], None]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The cash-market quotes of a COTAHIST file as raw long-layout rows, and ticker names.

    Args:
        path: the file (latin-1, as B3 publishes it).
        problem: called with (message, line, column, value) for each problem found.

    Returns:
        Columns ``date`` (``AAAAMMDD`` text), ``ticker``, ``open``, ``high``, ``low``,
        ``close``, ``volume`` (numbers as text, decimals placed) and ``_line``; and each
        ticker's name (``NOMRES ESPECI``).
    """
    lines = path.read_text(encoding="latin-1").splitlines()
    rows: list[dict[str, str | None]] = []
    names: dict[str, str] = {}
    trailer: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        if not line.strip():
            continue
        kind = line[:2]
        if number == 1 and not line.startswith(HEADER_MARK):
            problem(
                "is not a COTAHIST header (expected '00COTAHIST' at columns 1-10)",
                where,
                "TIPREG",
                line[:10],
            )
        if len(line.rstrip("\r")) != RECORD_LENGTH:
            problem(
                f"has {len(line)} characters; COTAHIST records have {RECORD_LENGTH}",
                where,
                None,
                None,
            )
            continue
        if kind == "99":
            trailer = (number, _field(line, 32, 42))
        elif kind == "01" and _field(line, 25, 27) == CASH_MARKET:
            rows.append(_quote(line, where, problem, names))
        elif kind not in ("00", "01"):
            problem("is not a COTAHIST record type (expected 00, 01 or 99)", where, "TIPREG", kind)
    if trailer is None:
        problem("no trailer record (type 99): the file is truncated", None, None, None)
    else:
        at, total = trailer
        if not total.strip().isdigit() or int(total) != len(lines):
            problem(
                f"the trailer counts {total.strip()!r} records but the file has "
                f"{len(lines)} lines: the file is truncated or altered",
                f"line {at}",
                "TOTREG",
                total.strip(),
            )
    columns = ["date", "ticker", "open", "high", "low", "close", "volume", "_line"]
    return pd.DataFrame(rows, columns=columns), names


def _quote(
    line: str,
    where: str,
    problem: Callable[[str, str | None, str | None, object], None],
    names: dict[str, str],
) -> dict[str, str | None]:
    ticker = _field(line, 13, 24).strip()
    factor_text = _field(line, 211, 217)
    factor = int(factor_text) if factor_text.isdigit() and int(factor_text) > 0 else None
    if factor is None:
        problem(
            "is not a quote factor (expected a positive whole number)", where, "FATCOT", factor_text
        )
    values: dict[str, str | None] = {}  # None: missing, already reported
    for name, field, (first, last) in (
        ("open", "PREABE", (57, 69)),
        ("high", "PREMAX", (70, 82)),
        ("low", "PREMIN", (83, 95)),
        ("close", "PREULT", (109, 121)),
    ):
        text = _field(line, first, last)
        if not text.isdigit():
            problem("is not a price (expected 13 digits, 2 of them decimals)", where, field, text)
            values[name] = None
        else:
            values[name] = repr(int(text) / 100 / (factor or 1))
    volume = _field(line, 153, 170)
    if not volume.isdigit():
        problem("is not a number of shares (expected 18 digits)", where, "QUATOT", volume)
    names.setdefault(ticker, " ".join(_field(line, 28, 49).split()))
    return {
        "date": _field(line, 3, 10),
        "ticker": ticker,
        **values,
        "volume": str(int(volume)) if volume.isdigit() else None,
        "_line": where,
    }
