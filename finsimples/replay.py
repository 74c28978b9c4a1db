"""The replay feed: the bundled sample sent one trading day at a time, as a daily feed would.

``next_day_file`` cuts the first trading day after the lake's data out of a price file and
renders it as the small wide CSV a vendor's daily drop looks like. The demo, the flow tests and
the flow benchmark put it into the drop location, then run the daily flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from finsimples.ingest import read_price_file, select_next_day
from finsimples.lake import Lake


@dataclass(frozen=True)
class DayFile:
    """One replayed trading day as a file."""

    name: str
    day: date
    rows: int
    data: bytes


def next_day_file(source: Path, lake: Lake) -> DayFile | None:
    """The next trading day of ``source`` after the lake's data (None: the lake is caught up).

    Raises:
        IngestError: ``source`` is not a valid price file.
    """
    rows = select_next_day(read_price_file(source), lake.watermarks())
    if rows.empty:
        return None
    day = rows["date"].max().date()
    wide = rows.pivot(index="date", columns="ticker", values="adj_close")
    wide.index = pd.DatetimeIndex(wide.index).strftime("%Y-%m-%d")
    data = wide.rename_axis("Date").rename_axis(None, axis=1).to_csv().encode()
    return DayFile(name=f"prices-{day.isoformat()}.csv", day=day, rows=len(rows), data=data)
