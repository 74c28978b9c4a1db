"""Search and pagination of /v1/tickers (``bentos.ticker_search``), and its size at 2,000."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from benchmarks.bench_tickers import synthetic_windows
from bentos.schemas import TickerOut, TickersAnswer
from bentos.ticker_search import (
    MAX_LIMIT,
    BadCursorError,
    BadQueryError,
    TickerQuery,
    decode_cursor,
    encode_cursor,
    match_rank,
    search_tickers,
    unknown_parameter,
)

BUDGET_BYTES = 50_000  # issue 26: /v1/tickers answers <= 50 kB at 2,000 tickers


@dataclass(frozen=True)
class Window:
    """The fields of ``bentos.lake_view.TickerWindow`` a search reads."""

    ticker: str
    name: str | None = None
    forecastable: bool = True


LAKE = [
    Window("BPET3", "Bravo Petróleo ON"),
    Window("ITUB4", "Itaú Unibanco PN"),
    Window("KO", "Coca-Cola Company"),
    Window("KOF", "Coca-Cola FEMSA"),
    Window("PETR3", "Petrobras ON"),
    Window("PETR4", "Petrobras PN"),
    Window("PETZ3", "Petz ON", forecastable=False),
    Window("VALE3", "Vale ON"),
    Window("XPET11", None),
    Window("ZZZ", "Compet Holdings"),
]


def tickers(page: object) -> list[str]:
    return [w.ticker for w in page.items]  # type: ignore[attr-defined]


def test_no_query_lists_by_ticker_with_the_total() -> None:
    page = search_tickers(LAKE, TickerQuery())
    assert tickers(page) == sorted(w.ticker for w in LAKE)
    assert (page.total, page.next_cursor) == (len(LAKE), None)


def test_best_matches_first_case_and_accents_ignored() -> None:
    page = search_tickers(LAKE, TickerQuery(q="pet"))
    # ticker prefix, ticker inside, a name word starting with it, then a name containing it
    assert tickers(page) == ["PETR3", "PETR4", "PETZ3", "BPET3", "XPET11", "ZZZ"]
    assert tickers(search_tickers(LAKE, TickerQuery(q="ko"))) == ["KO", "KOF"]
    assert tickers(search_tickers(LAKE, TickerQuery(q="itau"))) == ["ITUB4"]
    assert tickers(search_tickers(LAKE, TickerQuery(q="petróleo"))) == ["BPET3"]
    assert tickers(search_tickers(LAKE, TickerQuery(q="  vale "))) == ["VALE3"]
    assert search_tickers(LAKE, TickerQuery(q="NOPE")).total == 0


def test_rank_of_each_kind_of_match() -> None:
    assert match_rank("KO", "KO", "Coca-Cola") == 0
    assert match_rank("KO", "KOF", None) == 1
    assert match_rank("PET", "BPET3", None) == 2
    assert match_rank("COLA", "KO", "COCA-COLA") == 3
    assert match_rank("OLA", "KO", "COCA-COLA") == 4
    assert match_rank("PEPSI", "KO", "COCA-COLA") is None


def test_forecastable_filter() -> None:
    only = search_tickers(LAKE, TickerQuery(q="PET", forecastable=True))
    assert "PETZ3" not in tickers(only)
    assert only.total == 5
    assert tickers(search_tickers(LAKE, TickerQuery(forecastable=False))) == ["PETZ3"]


def test_pages_follow_each_other_without_repeats_or_gaps() -> None:
    seen, cursor, pages = [], None, 0
    while True:
        page = search_tickers(LAKE, TickerQuery(q="e", limit=3, cursor=cursor))
        assert len(page.items) <= 3
        assert page.total == len(search_tickers(LAKE, TickerQuery(q="e")).items)
        seen += tickers(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == tickers(search_tickers(LAKE, TickerQuery(q="e", limit=MAX_LIMIT)))
    assert pages == -(-len(seen) // 3)


def test_a_refresh_between_pages_neither_repeats_nor_skips() -> None:
    first = search_tickers(LAKE, TickerQuery(limit=4))
    assert tickers(first) == ["BPET3", "ITUB4", "KO", "KOF"]
    refreshed = [Window("AAAA3"), *LAKE, Window("PETR5")]  # listed meanwhile
    second = search_tickers(refreshed, TickerQuery(limit=4, cursor=first.next_cursor))
    assert tickers(second) == ["PETR3", "PETR4", "PETR5", "PETZ3"]


def test_a_cursor_of_another_search_is_refused() -> None:
    cursor = search_tickers(LAKE, TickerQuery(q="PET", limit=1)).next_cursor
    assert cursor is not None
    with pytest.raises(BadCursorError, match="another search"):
        search_tickers(LAKE, TickerQuery(q="KO", limit=1, cursor=cursor))
    with pytest.raises(BadCursorError, match="another search"):
        search_tickers(LAKE, TickerQuery(q="PET", forecastable=True, cursor=cursor))
    # The same search, typed differently, is the same search.
    again = search_tickers(LAKE, TickerQuery(q=" pet", limit=1, cursor=cursor))
    assert tickers(again) == ["PETR4"]


@pytest.mark.parametrize("cursor", ["x", "bm90LWpzb24", encode_cursor(0, "KO", "abc")[:-3], "W10"])
def test_a_cursor_this_api_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursorError, match="cursor") as raised:
        search_tickers(LAKE, TickerQuery(cursor=cursor))
    assert raised.value.field == "cursor"


def test_unknown_parameters_are_named() -> None:
    unknown_parameter(["q", "limit", "cursor", "forecastable"])
    with pytest.raises(BadQueryError) as raised:
        unknown_parameter(["q", "limt", "page"])
    assert raised.value.field == "limt"


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(3, "PETR4", "fp"), "fp") == (3, "PETR4")


def test_a_page_at_2000_tickers_is_within_the_budget() -> None:
    """Figures for docs/benchmarks.md: the answer's bytes at 2,000 synthetic tickers."""
    lake = synthetic_windows(2000)

    def size(query: TickerQuery) -> int:
        page = search_tickers(lake, query)
        answer = TickersAnswer(  # as bentos.service builds it
            lake_version=123,
            tickers=[TickerOut(**vars(window)) for window in page.items],
            total=page.total,
            next_cursor=page.next_cursor,
        )
        return len(json.dumps(answer.model_dump(mode="json"), separators=(",", ":")).encode())

    everything = size(TickerQuery(limit=len(lake)))
    default, largest = size(TickerQuery()), size(TickerQuery(limit=MAX_LIMIT))
    search = size(TickerQuery(q="A", limit=20))
    print(
        f"\n/v1/tickers at 2,000 tickers: all {everything:,} B; default page {default:,} B; "
        f"limit={MAX_LIMIT} {largest:,} B; q=A&limit=20 {search:,} B"
    )
    assert everything > BUDGET_BYTES  # the unpaginated list would break the budget
    assert largest <= BUDGET_BYTES
    assert default <= largest
    assert search <= largest
