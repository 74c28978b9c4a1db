"""A ticker's recent closing prices, for ``GET /v1/history`` (the investor page's chart).

Read from the lake the predictor serves, one ticker at a time, and memoized per lake version:
the page asks for the same year of prices for every horizon and language, and a new lake
version (the daily ingest) makes the memo obsolete by its key alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import timedelta
from typing import TYPE_CHECKING

from bentos.predictor import UnknownTickerError
from bentos.schemas import HistoryAnswer, HistoryPoint
from finsimples.forecast import suggest_tickers

if TYPE_CHECKING:
    from bentos.predictor import Predictor

CALENDAR_PER_TRADING_DAY = 1.5
"""Calendar days read per trading day asked for: weekends and holidays, with room to spare."""


class PriceHistory:
    """Closing prices per ticker from the predictor's lake, memoized per lake version.

    Args:
        predictor: The served predictor (its lake, lake version and tickers).
        max_entries: Answers kept in memory (least recently used dropped first).
    """

    def __init__(self, predictor: Predictor, max_entries: int = 256) -> None:
        self.predictor = predictor
        self.max_entries = max_entries
        self._memo: OrderedDict[tuple[int, str, int], HistoryAnswer] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, ticker: str, days: int) -> HistoryAnswer:
        """The last ``days`` trading days of ``ticker``'s adjusted closes, oldest first.

        Raises:
            UnknownTickerError: The lake has no such ticker (with suggestions).
        """
        ticker = ticker.upper()
        version = self.predictor.lake_version
        windows = {w.ticker: w for w in self.predictor.tickers()}
        window = windows.get(ticker)
        if window is None:
            raise UnknownTickerError(ticker, suggest_tickers(ticker, sorted(windows)))
        key = (version, ticker, days)
        with self._lock:
            found = self._memo.get(key)
            if found is not None:
                self._memo.move_to_end(key)
                return found
        start = window.last_date - timedelta(days=int(days * CALENDAR_PER_TRADING_DAY) + 10)
        frame = self.predictor.lake.read_prices([ticker], start=start).tail(days)
        points = [
            HistoryPoint(date=day.date(), close=round(float(close), 4))
            for day, close in zip(frame["date"], frame["adj_close"], strict=True)
        ]
        answer = HistoryAnswer(ticker=ticker, lake_version=version, points=points)
        with self._lock:
            self._memo[key] = answer
            while len(self._memo) > self.max_entries:
                self._memo.popitem(last=False)
        return answer
