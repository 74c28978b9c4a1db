"""Search and pagination of the lake's tickers (``GET /v1/tickers``): pure functions.

At 2,000 tickers the whole list is about half a megabyte of JSON; a page of ``limit`` tickers
stays under the 50 kB budget (docs/benchmarks.md). A search ``q`` matches tickers and names,
case- and accent-insensitively (``petro`` finds ``PETR4`` "Petrobras PN", ``itau`` finds
"Itaú Unibanco"), best matches first:

0. the ticker itself (``KO`` for ``ko``);
1. tickers that start with ``q`` (``PETR3``, ``PETR4`` for ``PETR``);
2. tickers that contain it;
3. names that contain it, at the start of a word first (rank 3), anywhere else after (rank 4);

then by ticker. Pages follow each other by an opaque ``cursor``: the (rank, ticker) of the
page's last item (keyset pagination, as well-kept APIs do), so a lake refresh between two
pages neither repeats nor skips a ticker that was already there. A cursor carries a
fingerprint of its search: reused with another ``q`` or filter, it is refused (422 naming
``cursor``) rather than silently paging through something else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

DEFAULT_LIMIT = 50
"""Tickers per page when ``limit`` is not given: today's 20 sample tickers fit in one."""
MAX_LIMIT = 100
"""The largest page: about 25 kB of JSON with the sample's names, half the 50 kB budget."""
MAX_QUERY = 40
QUERY_PATTERN = r"^[0-9A-Za-zÀ-ÿ .&'\-]*$"
"""Letters (Latin-1's accented ones too), digits, spaces and ``. & ' -``: what tickers and names
contain. Explicit ranges rather than a word class: every regex engine (Python's, pydantic's, a
client's) reads them alike."""
CURSOR_PATTERN = r"^[A-Za-z0-9_\-]{1,200}$"
_CURSOR_VERSION = 1


class Listed(Protocol):
    """What a search reads of a ticker (``bentos.lake_view.TickerWindow``)."""

    @property
    def ticker(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def forecastable(self) -> bool: ...


@dataclass(frozen=True)
class TickerQuery:
    """One request's search: ``q`` ("" for all), ``forecastable`` filter, page size, cursor."""

    q: str = ""
    forecastable: bool | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


T = TypeVar("T", bound=Listed)


@dataclass(frozen=True)
class TickerPage(Generic[T]):
    """A page: its items, how many tickers match in all, the cursor of the next page."""

    items: list[T]
    total: int
    next_cursor: str | None


PARAMETERS = frozenset({"q", "forecastable", "limit", "cursor"})
"""The query parameters of ``GET /v1/tickers``."""


class BadQueryError(ValueError):
    """A query parameter the schema cannot judge is wrong; ``field`` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class BadCursorError(BadQueryError):
    """A cursor this API did not give for this search."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "cursor")


def unknown_parameter(names: Iterable[str]) -> None:
    """Refuse query parameters ``GET /v1/tickers`` does not take.

    Raises:
        BadQueryError: naming the first unknown parameter (sorted) as its ``field``.
    """
    unknown = sorted(set(names) - PARAMETERS)
    if unknown:
        raise BadQueryError(
            f"unknown query parameter; expected one of {', '.join(sorted(PARAMETERS))}",
            field=unknown[0][:40],
        )


def fold(text: str) -> str:
    """``text`` upper-cased without accents: ``Itaú`` -> ``ITAU``."""
    return _fold(text)


@functools.lru_cache(maxsize=16_384)
def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper().strip()


def match_rank(q: str, ticker: str, name: str | None) -> int | None:
    """How well the folded query ``q`` matches a ticker (lower is better); None: no match."""
    if not q:
        return 0
    code = fold(ticker)
    if code == q:
        return 0
    if code.startswith(q):
        return 1
    if q in code:
        return 2
    label = fold(name or "")
    if q not in label:
        return None
    return 3 if _word_start(q).search(label) else 4


@functools.lru_cache(maxsize=256)
def _word_start(q: str) -> re.Pattern[str]:
    """``q`` at the start of a word (not preceded by a letter or digit)."""
    return re.compile(r"(?<!\w)" + re.escape(q))


def search_tickers(items: Sequence[T], query: TickerQuery) -> TickerPage[T]:
    """The page of ``items`` that ``query`` asks for (see the module's docstring).

    Raises:
        BadCursorError: the cursor is not one this function made, or was made for another
            search.
    """
    q = fold(query.q)
    fingerprint = _fingerprint(q, query.forecastable)
    after = decode_cursor(query.cursor, fingerprint) if query.cursor else None
    ranked = []
    for item in items:
        if query.forecastable is not None and item.forecastable != query.forecastable:
            continue
        rank = match_rank(q, item.ticker, item.name)
        if rank is not None:
            ranked.append((rank, item.ticker, item))
    ranked.sort(key=lambda entry: (entry[0], entry[1]))
    remaining = [e for e in ranked if after is None or (e[0], e[1]) > after]
    page = remaining[: query.limit]
    more = len(remaining) > len(page)
    last = page[-1] if page else None
    cursor = encode_cursor(last[0], last[1], fingerprint) if more and last else None
    return TickerPage(items=[e[2] for e in page], total=len(ranked), next_cursor=cursor)


def _fingerprint(q: str, forecastable: bool | None) -> str:
    digest = hashlib.sha256(json.dumps([q, forecastable]).encode()).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode()


def encode_cursor(rank: int, ticker: str, fingerprint: str) -> str:
    """An opaque cursor: the last item's (rank, ticker) and the search's fingerprint."""
    raw = json.dumps([_CURSOR_VERSION, rank, ticker, fingerprint], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[int, str]:
    """The (rank, ticker) a cursor resumes after.

    Raises:
        BadCursorError: not a cursor of this API, or one made for another search.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, rank, ticker, made_for = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursorError(
            "not a cursor of this API: pass the next_cursor of the previous page as it is"
        ) from exc
    if version != _CURSOR_VERSION or not isinstance(rank, int) or not isinstance(ticker, str):
        raise BadCursorError("not a cursor of this API: pass the next_cursor of a previous page")
    if made_for != fingerprint:
        raise BadCursorError(
            "this cursor belongs to another search: keep q and forecastable as they were "
            "on the first page, or start again without a cursor"
        )
    return rank, ticker
