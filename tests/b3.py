"""B3's COTAHIST layout written from code: the files tests and benchmarks feed to ingest.

Nothing can be downloaded here, so the files are built field by field from B3's published
layout (``SeriesHistoricas_Layout.pdf``, the positions ``finsimples.cotahist`` reads): 245
characters a record, latin-1, CRLF, a header (00), quotes (01) and a trailer (99) counting
every record.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class Quote:
    """One quote record; prices in reais (two decimals kept), volume in shares."""

    day: date
    ticker: str
    close: float
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: int = 100_000
    market: str = "010"
    name: str = "EMPRESA"
    especi: str = "ON      NM"
    factor: int = 1


def _price(value: float) -> str:
    return f"{round(value * 100):013d}"


def quote_record(q: Quote) -> str:
    """The 245-character type 01 record of ``q``."""
    open_, high, low = q.open or q.close, q.high or q.close, q.low or q.close
    record = (
        "01"
        + q.day.strftime("%Y%m%d")  # DATPRE 3-10
        + "02"  # CODBDI 11-12
        + f"{q.ticker:<12}"  # CODNEG 13-24
        + q.market  # TPMERC 25-27
        + f"{q.name:<12.12}"  # NOMRES 28-39
        + f"{q.especi:<10.10}"  # ESPECI 40-49
        + "   "  # PRAZOT 50-52
        + "R$  "  # MODREF 53-56
        + _price(open_)  # PREABE 57-69
        + _price(high)  # PREMAX 70-82
        + _price(low)  # PREMIN 83-95
        + _price((high + low) / 2)  # PREMED 96-108
        + _price(q.close)  # PREULT 109-121
        + _price(q.close)  # PREOFC 122-134
        + _price(q.close)  # PREOFV 135-147
        + f"{1234:05d}"  # TOTNEG 148-152
        + f"{q.volume:018d}"  # QUATOT 153-170
        + f"{round(q.volume * q.close * 100):018d}"  # VOLTOT 171-188
        + _price(0)  # PREEXE 189-201
        + "0"  # INDOPC 202
        + "99991231"  # DATVEN 203-210
        + f"{q.factor:07d}"  # FATCOT 211-217
        + f"{0:013d}"  # PTOEXE 218-230
        + "BRXXXXACNOR0"  # CODISI 231-242
        + "100"  # DISMES 243-245
    )
    assert len(record) == 245, (q, len(record))  # a layout slip must not pass
    return record


def cotahist_text(
    quotes: Iterable[Quote], name: str = "COTAHIST.2024", *, total: int | None = None
) -> bytes:
    """A whole COTAHIST file: header, quotes, trailer; ``total`` overrides the trailer count."""
    body = [quote_record(q) for q in quotes]
    header = f"00{name:<13}BOVESPA 20240104".ljust(245)
    count = len(body) + 2 if total is None else total
    trailer = f"99{name:<13}BOVESPA 20240104{count:011d}".ljust(245)
    return "\r\n".join([header, *body, trailer, ""]).encode("latin-1")


def write_cotahist(
    folder: Path, name: str, quotes: Iterable[Quote], *, zipped: bool = True
) -> Path:
    """``COTAHIST_A2022.ZIP`` holding ``COTAHIST_A2022.TXT`` (or the .TXT alone) in ``folder``."""
    data = cotahist_text(quotes)
    if not zipped:
        path = folder / f"{name}.TXT"
        path.write_bytes(data)
        return path
    path = folder / f"{name}.ZIP"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.TXT", data)
    return path


@dataclass(frozen=True)
class CorporateYear:
    """Six sessions of three tickers with a split, a reverse split, dividends and JCP, the
    events file that explains them and the adjusted closes computed by hand."""

    days: list[date]
    closes: dict[str, list[float]]
    events_csv: str
    expected: dict[str, list[float]]

    def quotes(self, days: Iterable[date] | None = None) -> list[Quote]:
        wanted = set(self.days if days is None else days)
        rows = []
        for i, day in enumerate(self.days):
            if day not in wanted:
                continue
            for ticker, closes in self.closes.items():
                rows.append(Quote(day, ticker, closes[i], name=ticker[:4], especi="ON      NM"))
                rows.append(Quote(day, f"{ticker}F", closes[i], market="020"))
        return rows


def corporate_year(days: list[date]) -> CorporateYear:
    """:class:`CorporateYear` on six given sessions."""
    d = [day.isoformat() for day in days]
    events = (
        "ticker,ex_date,kind,value\n"
        f"PETR4,{d[2]},split,2\n"
        f"PETR4,{d[4]},dividend,0.5\n"
        f"VALE3,{d[2]},reverse_split,10\n"
        f"ITUB4,{d[1]},dividend,0.49\n"
        f"ITUB4,{d[4]},jcp,0.244\n"
    )
    closes = {
        "PETR4": [10.0, 10.5, 5.4, 5.5, 5.1, 5.2],
        "VALE3": [1.0, 1.1, 10.5, 10.8, 10.9, 11.0],
        "ITUB4": [25.0, 24.6, 24.5, 24.4, 24.2, 24.0],
    }
    # PETR4: split 2 on day 3 (x 1/2 before it), dividend 0.50 on day 5 after a 5.50 close
    # (x 1 - 0.5/5.5 = 10/11 before it). VALE3: 10 shares became one on day 3 (x 10 before).
    # ITUB4: dividend 0.49 after a 25.00 close (x 0.9804), JCP 0.244 after 24.40 (x 0.99).
    expected = {
        "PETR4": [50 / 11, 52.5 / 11, 54 / 11, 5.0, 5.1, 5.2],
        "VALE3": [10.0, 11.0, 10.5, 10.8, 10.9, 11.0],
        "ITUB4": [25 * 0.9804 * 0.99, 24.6 * 0.99, 24.5 * 0.99, 24.4 * 0.99, 24.2, 24.0],
    }
    return CorporateYear(days, closes, events, expected)
