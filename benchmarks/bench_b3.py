"""B3 benchmark: a year of the whole B3 cash market in COTAHIST layout, and a re-adjustment.

* Synthesizes ``SERIES`` cash-market series (stocks, units, FIIs, ETFs, BDRs) over every B3
  session of ``YEAR`` (248 in 2023), plus a fractional-lot (TPMERC 020) line for the first
  ``FRACTIONAL`` of them each day, as B3's yearly file holds them, in B3's layout
  (``tests.b3``): ``COTAHIST_A2023.TXT`` and the same text zipped (``COTAHIST_A2023.ZIP``).
* Ingests each into a new, empty local lake with ``ingest_files`` (parse, validate, place the
  tickers, check the calendar, MERGE, compact), each in its own process so its peak memory
  (``VmHWM``) is its own; the process's memory after its imports is printed beside it.
* Re-adjustment: a lake holding one ticker with ``HISTORY_YEARS`` years of daily history (as
  traded) then takes an events file with one dividend in the middle of it: the time of that
  ingest, which reads the ticker's history, adjusts it and MERGEs the changed rows (recorded
  as corrections).

Run with ``python -m benchmarks.bench_b3`` (``make bench`` does not run it: it is long).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_mark, others_cores
from finsimples.calendars import calendar
from tests.b3 import Quote, cotahist_text

YEAR = 2023
SERIES = 1500
FRACTIONAL = 400
HISTORY_YEARS = 20
_KINDS = (("ON      NM", 3), ("PN      N2", 4), ("UNT     N2", 11), ("CI", 11), ("DRN", 34))

# Peak memory is VmHWM (this process's own high-water mark since exec), not ru_maxrss, which
# Linux carries over from the parent at fork: the parent holds the synthesized year.
_INGEST = """
import json, sys, time
from pathlib import Path
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
base = hwm()
lake = Lake.from_settings(Settings(lake_uri=sys.argv[2]))
start = time.perf_counter()
report = ingest_files(lake, [Path(sys.argv[1])])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": round(seconds, 2), "rows": report.rows, "skipped": report.skipped,
                  "peak_mib": round(hwm(), 1), "after_imports_mib": round(base, 1)}))
"""


def sessions(first: date, last: date) -> list[date]:
    """B3's sessions from ``first`` to ``last``."""
    days = calendar("BVMF").sessions_in_range(first.isoformat(), last.isoformat())
    return [d.date() for d in days]


def tickers() -> list[tuple[str, str]]:
    """``SERIES`` codes with their ESPECI: AAAA3, AAAB4, AAAC11 ..."""
    out = []
    for i in range(SERIES):
        letters = "".join(chr(65 + (i // 26**k) % 26) for k in (3, 2, 1, 0))
        especi, number = _KINDS[i % len(_KINDS)]
        out.append((f"{letters}{number}", especi))
    return out


def market_year(days: list[date], seed: int = 25) -> list[Quote]:
    """Every series on every session: random walks from 5 to 100 reais."""
    rng = np.random.default_rng(seed)
    codes = tickers()
    start = rng.uniform(5, 100, len(codes))
    walk = start * np.exp(np.cumsum(rng.normal(0, 0.02, (len(days), len(codes))), axis=0))
    quotes = []
    for d, day in enumerate(days):
        for i, (code, especi) in enumerate(codes):
            close = round(float(walk[d, i]), 2)
            quotes.append(Quote(day, code, close, name=code[:4], especi=especi))
            if i < FRACTIONAL:
                quotes.append(Quote(day, f"{code}F", close, market="020", especi=especi))
    return quotes


def run_ingest(path: Path, lake: Path) -> dict[str, object]:
    """One ingest in its own process; its figures."""
    mark = cpu_mark()
    out = subprocess.run(  # our own interpreter and script
        [sys.executable, "-c", _INGEST, str(path), str(lake)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["others_cores"] = round(others_cores(mark), 2)
    return figures


def readjustment(folder: Path) -> dict[str, object]:
    """A ticker with ``HISTORY_YEARS`` years of history, then one dividend in its middle."""
    from finsimples.ingest import ingest_files
    from finsimples.lake import Lake
    from finsimples.settings import Settings

    days = sessions(date(YEAR - HISTORY_YEARS, 1, 2), date(YEAR, 12, 28))
    rng = np.random.default_rng(7)
    closes = 20 * np.exp(np.cumsum(rng.normal(0, 0.015, len(days))))
    quotes = [Quote(d, "PETR4", round(float(c), 2)) for d, c in zip(days, closes, strict=True)]
    history = folder / "COTAHIST_HISTORY.TXT"
    history.write_bytes(cotahist_text(quotes))
    lake = Lake.from_settings(Settings(lake_uri=str(folder / "history-lake")))
    ingest_files(lake, [history])
    middle = days[len(days) // 2]
    events = folder / "events.csv"
    events.write_text(f"ticker,ex_date,kind,value\nPETR4,{middle},dividend,0.10\n")
    mark = cpu_mark()
    start = time.perf_counter()
    report = ingest_files(lake, [events])
    seconds = time.perf_counter() - start
    return {
        "history_rows": len(days),
        "first": days[0].isoformat(),
        "ex_date": middle.isoformat(),
        "seconds": round(seconds, 3),
        "replaced": report.write.replaced,
        "corrections": len(lake.corrections()),
        "others_cores": round(others_cores(mark), 2),
    }


def main() -> None:
    """Print each figure as a JSON line."""
    days = sessions(date(YEAR, 1, 1), date(YEAR, 12, 31))
    with tempfile.TemporaryDirectory(prefix="bench-b3-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        text = cotahist_text(market_year(days), name=f"COTAHIST.{YEAR}")  # quotes freed here
        plain = folder / f"COTAHIST_A{YEAR}.TXT"
        plain.write_bytes(text)
        zipped = folder / f"COTAHIST_A{YEAR}.ZIP"
        with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(plain.name, text)
        print(
            json.dumps(
                {
                    "synthesized": f"{SERIES} series x {len(days)} sessions",
                    "lines": text.count(b"\r\n"),
                    "txt_mib": round(len(text) / 2**20, 1),
                    "zip_mib": round(zipped.stat().st_size / 2**20, 1),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            ),
            flush=True,
        )
        for name, path in (("txt", plain), ("zip", zipped)):
            figures = run_ingest(path, folder / f"lake-{name}")
            print(json.dumps({"ingest": name, **figures}), flush=True)
        print(json.dumps({"readjustment": readjustment(folder)}), flush=True)


if __name__ == "__main__":
    main()
