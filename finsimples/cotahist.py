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
01    ESPECI     40-49     share kind (``ON``, ``PN``, ``UNT``, ``CI``, ``DR3``) then marks
                           (``N2``, ``NM``, ``ED``); its first word is kept as the kind
01    PREABE     57-69     open, 2 implied decimals
01    PREMAX     70-82     high, 2 implied decimals
01    PREMIN     83-95     low, 2 implied decimals
01    PREULT     109-121   close (last trade), 2 implied decimals
01    QUATOT     153-170   shares traded (the volume)
01    FATCOT     211-217   quote factor: prices are per this many shares (1 or 1000)
99    TOTREG     32-42     lines in the file, header and trailer included
====  =========  ========  ============================================================

B3 publishes the file yearly (``COTAHIST_A2022.ZIP``), monthly (``COTAHIST_M012023.ZIP``) and
daily (``COTAHIST_D02012023.ZIP``): a ZIP holding one ``.TXT`` of the same name, latin-1, CRLF
line ends. The ZIP or the text itself is read, recognised by its content (a ZIP, or a text
starting ``00COTAHIST``) or by B3's file name. A ZIP that is cut short, holds more or less than
one file or cannot be unpacked is refused with the reason, as is a trailer whose count differs
from the lines read.

Only TPMERC ``010`` (cash market, round lots) quotes become prices; the others (fractional
lots ``020``, options ``070``/``080``, forward ``030``, auctions ``017``...) are counted per
market and reported. Prices are as traded; ``adj_close`` is the close until corporate events
adjust it (``finsimples.adjustment``).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

RECORD_LENGTH = 245
HEADER_MARK = "00COTAHIST"
CASH_MARKET = "010"
FILE_NAME = re.compile(r"^COTAHIST_(A\d{4}|M\d{6}|D\d{8})(\.(zip|txt))?$", re.IGNORECASE)
"""B3's names: ``COTAHIST_A2022.ZIP``, ``COTAHIST_M012023.ZIP``, ``COTAHIST_D02012023.TXT``."""
MARKETS = {
    "010": "cash",
    "012": "call exercise",
    "013": "put exercise",
    "017": "auction",
    "020": "fractional lots",
    "030": "forward with gain retention",
    "050": "forward",
    "060": "futures",
    "070": "calls",
    "080": "puts",
}
"""TPMERC codes of B3's layout, named in the ingest report's skipped counts."""
_ZIP_MAGIC = b"PK"

Problem = Callable[[str, str | None, str | None, object], None]


class CotahistFileError(ValueError):
    """The file as a whole cannot be read as COTAHIST (a broken ZIP); nothing of it is read."""


@dataclass
class Quotes:
    """The cash-market quotes of one COTAHIST file.

    Attributes:
        frame: columns ``date`` (``AAAAMMDD`` text), ``ticker``, ``open``, ``high``, ``low``,
            ``close``, ``volume`` (floats, decimals placed; None where a field was invalid,
            already reported) and ``_line``.
        names: each ticker's name (``NOMRES ESPECI``, spaces collapsed).
        kinds: each ticker's share kind (ESPECI's first word: ``ON``, ``PN``, ``UNT``, ``CI``).
        skipped: quotes of other markets, per TPMERC code.
    """

    frame: pd.DataFrame
    names: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def is_cotahist(path: Path) -> bool:
    """Whether the file is a COTAHIST file: B3's name, a ``.zip``, or a ``00COTAHIST`` header.

    A ZIP is known by its name, not its first bytes: other formats are ZIPs inside (XLSX), and
    a broken file of another kind must get that kind's error.
    """
    if FILE_NAME.match(path.name) or path.suffix.lower() == ".zip":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(len(HEADER_MARK)) == HEADER_MARK.encode()
    except OSError:
        return False


def market_name(code: str) -> str:
    """``070`` -> ``070 (calls)``: a TPMERC code as the report shows it."""
    return f"{code} ({MARKETS[code]})" if code in MARKETS else code


def _lines(path: Path) -> Iterator[str]:
    """The text lines of the file or of the one file its ZIP holds (latin-1, any line end).

    Raises:
        CotahistFileError: a ZIP cut short, holding more or less than one file, or damaged.
    """
    with path.open("rb") as raw:
        is_zip = raw.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    if not is_zip:
        if path.suffix.lower() == ".zip":
            raise CotahistFileError("is named .ZIP but is not a ZIP archive")
        with path.open(encoding="latin-1", newline=None) as text:
            yield from text
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CotahistFileError(
            f"is not a complete ZIP archive ({exc}): the download was cut short; fetch it again"
        ) from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            listed = ", ".join(m.filename for m in members) or "nothing"
            raise CotahistFileError(
                f"holds {len(members)} files ({listed}); a COTAHIST ZIP holds exactly one "
                "COTAHIST_*.TXT: unzip it and ingest each file"
            )
        member = members[0]
        try:
            with archive.open(member) as handle:
                yield from io.TextIOWrapper(handle, encoding="latin-1", newline=None)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise CotahistFileError(
                f"its file {member.filename} cannot be unpacked ({exc}): the ZIP is damaged; "
                "fetch it again"
            ) from exc


def _field(line: str, first: int, last: int) -> str:
    return line[first - 1 : last]


def read_cotahist(path: Path, problem: Problem) -> Quotes:
    """The cash-market quotes of a COTAHIST file (zipped or not), its names, kinds and skips.

    Args:
        path: the file, or B3's ZIP holding it.
        problem: called with (message, line, column, value) for each problem found.
    """
    columns: dict[str, list[object]] = {
        c: [] for c in ("date", "ticker", "open", "high", "low", "close", "volume", "_line")
    }
    quotes = Quotes(pd.DataFrame())
    skipped: Counter[str] = Counter()
    trailer: tuple[int, str] | None = None
    number = 0
    try:
        for number, text in enumerate(_lines(path), start=1):
            line = text.rstrip("\r\n")
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
            if len(line) != RECORD_LENGTH:
                problem(
                    f"has {len(line)} characters; COTAHIST records have {RECORD_LENGTH}",
                    where,
                    None,
                    None,
                )
                continue
            if kind == "01":
                market = line[24:27]
                if market == CASH_MARKET:
                    _quote(line, where, problem, quotes, columns)
                else:
                    skipped[market] += 1
            elif kind == "99":
                trailer = (number, _field(line, 32, 42))
            elif kind != "00":
                problem(
                    "is not a COTAHIST record type (expected 00, 01 or 99)", where, "TIPREG", kind
                )
    except CotahistFileError as exc:
        problem(str(exc), None, None, None)
        return quotes
    if trailer is None:
        problem("no trailer record (type 99): the file is truncated", None, None, None)
    else:
        at, total = trailer
        if not total.strip().isdigit() or int(total) != number:
            problem(
                f"the trailer counts {total.strip()!r} records but the file has "
                f"{number} lines: the file is truncated or altered",
                f"line {at}",
                "TOTREG",
                total.strip(),
            )
    quotes.frame = pd.DataFrame(columns)
    quotes.skipped = dict(sorted(skipped.items()))
    return quotes


_PRICES = (
    ("open", "PREABE", 57, 69),
    ("high", "PREMAX", 70, 82),
    ("low", "PREMIN", 83, 95),
    ("close", "PREULT", 109, 121),
)


def _quote(
    line: str, where: str, problem: Problem, quotes: Quotes, columns: dict[str, list[object]]
) -> None:
    ticker = _field(line, 13, 24).strip()
    factor_text = _field(line, 211, 217)
    factor = int(factor_text) if factor_text.isdigit() and int(factor_text) > 0 else None
    if factor is None:
        problem(
            "is not a quote factor (expected a positive whole number)", where, "FATCOT", factor_text
        )
    for name, field_name, first, last in _PRICES:
        text = _field(line, first, last)
        if text.isdigit():
            columns[name].append(int(text) / 100 / (factor or 1))
        else:
            problem(
                "is not a price (expected 13 digits, 2 of them decimals)", where, field_name, text
            )
            columns[name].append(None)
    volume = _field(line, 153, 170)
    if not volume.isdigit():
        problem("is not a number of shares (expected 18 digits)", where, "QUATOT", volume)
    columns["volume"].append(float(volume) if volume.isdigit() else None)
    columns["date"].append(_field(line, 3, 10))
    columns["ticker"].append(ticker)
    columns["_line"].append(where)
    if ticker not in quotes.names:
        especi = _field(line, 40, 49).split()
        # Field by field: a 12-letter NOMRES touches ESPECI with no space between.
        quotes.names[ticker] = " ".join([*_field(line, 28, 39).split(), *especi])
        quotes.kinds[ticker] = especi[0] if especi else ""
