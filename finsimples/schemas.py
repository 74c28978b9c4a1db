"""Shared schemas: the lake's prices table and the rules every ticker and price obeys."""

from __future__ import annotations

import re

import pyarrow as pa

TICKER_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,11}$")
"""Tickers as exchanges write them: ``PETR4``, ``BRK.B``, ``VALE3``, ``BF-B``; never ``..``."""

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
"""The columns whose values a correction can change; `source`/`ingested_at` are bookkeeping."""

KEY_COLUMNS: tuple[str, ...] = ("ticker", "date")

PRICES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("adj_close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
"""One row per (ticker, trading date). `adj_close` is the price models use; it is always set."""


def is_valid_ticker(ticker: str) -> bool:
    """Whether ``ticker`` follows :data:`TICKER_PATTERN` (whole string: no trailing newline)."""
    return TICKER_PATTERN.fullmatch(ticker) is not None


def check_ticker(ticker: str) -> str:
    """``ticker`` itself when it follows :data:`TICKER_PATTERN`.

    For code that puts a ticker into a cache key, a file name or an LLM prompt: the API and
    ingest validate tickers at the boundary, this refuses what would be dangerous there if a
    caller skipped that (``../x``, CR/LF, NUL, look-alike or invisible Unicode characters).

    Raises:
        ValueError: Not a ticker; the message shows the value escaped and cut to 40 characters.
    """
    if not isinstance(ticker, str) or not is_valid_ticker(ticker):
        shown = repr(ticker[:40]) if isinstance(ticker, str) else type(ticker).__name__
        raise ValueError(f"ticker {shown}: expected a ticker matching {TICKER_PATTERN.pattern}")
    return ticker


TICKERS_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("timezone", pa.string(), nullable=False),
        # Added with B3's COTAHIST files: nullable, so a table written before it reads (null)
        # and takes it at its next MERGE (schema evolution).
        pa.field("share_kind", pa.string()),
    ]
)
"""The ``tickers`` reference table: where each ticker trades (a MIC), in what currency, and
B3's share kind."""

LEGACY_TICKERS_SCHEMA = pa.schema([f for f in TICKERS_SCHEMA if f.name != "share_kind"])
"""The tickers table of the manifest lake (before Delta), which never had a share kind."""
