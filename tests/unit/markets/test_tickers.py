"""Where a ticker trades: the options, a reference file, the bundled list, the B3 rule."""

from __future__ import annotations

import pytest

from finsimples.tickers import (
    AmbiguousTickerError,
    bundled_reference,
    infer_listing,
    make_listing,
    parse_reference,
    resolve_listings,
    strip_b3_suffix,
)

SAMPLE = [
    "AAPL",
    "AMD",
    "BAC",
    "BBY",
    "CVX",
    "GE",
    "HD",
    "JNJ",
    "JPM",
    "KO",
    "LLY",
    "MRK",
    "MSFT",
    "PEP",
    "PFE",
    "PG",
    "RRC",
    "UNH",
    "WMT",
    "XOM",
]


@pytest.mark.parametrize("ticker", ["PETR4", "VALE3", "BOVA11", "ITUB4", "TAEE11", "AAPL34"])
def test_b3_codes_are_bvmf_in_brl(ticker: str) -> None:
    listing = infer_listing(ticker)
    assert listing is not None
    assert (listing.exchange, listing.currency, listing.timezone) == (
        "BVMF",
        "BRL",
        "America/Sao_Paulo",
    )


def test_the_sa_suffix_is_stripped_to_the_b3_code() -> None:
    assert strip_b3_suffix(" petr4.sa ") == "PETR4"
    assert strip_b3_suffix("BRK.B") == "BRK.B"
    assert strip_b3_suffix("AAPL.SA") == "AAPL.SA"  # not a B3 code: left alone


def test_the_bundled_sample_is_us_listed() -> None:
    reference = bundled_reference()
    for ticker in SAMPLE:
        assert reference[ticker].exchange in ("XNYS", "XNAS")
        assert reference[ticker].currency == "USD"
    assert reference["MSFT"].exchange == "XNAS"
    assert reference["KO"].exchange == "XNYS"


def test_an_ambiguous_ticker_is_refused_naming_the_option() -> None:
    with pytest.raises(AmbiguousTickerError, match="--exchange") as info:
        resolve_listings(["ZZZ", "PETR4", "ABC"])
    assert info.value.tickers == ["ABC", "ZZZ"]
    assert resolve_listings(["ZZZ"], strict=False) == {}


def test_precedence_option_then_file_then_lake_then_rules() -> None:
    given = {"KO": make_listing("KO", "XNAS", name="from file")}
    known = {"KO": make_listing("KO", "BVMF"), "ZZZ": make_listing("ZZZ", "XNYS")}
    placed = resolve_listings(["KO", "ZZZ", "VALE3"], given=given, known=known)
    assert placed["KO"].name == "from file"
    assert placed["ZZZ"].exchange == "XNYS"
    assert placed["VALE3"].exchange == "BVMF"
    forced = resolve_listings(["KO", "ZZZ"], exchange_option="bvmf", currency_option="usd")
    assert {(v.exchange, v.currency) for v in forced.values()} == {("BVMF", "USD")}


def test_reference_file_errors_name_the_line() -> None:
    listings = parse_reference("Ticker,Exchange,Name\nitsa4.sa,BVMF,Itausa PN\n\nKO,XNYS,Coke\n")
    assert listings["ITSA4"].currency == "BRL"
    assert listings["KO"].name == "Coke"
    with pytest.raises(ValueError, match="line 2, column 'exchange': unknown exchange 'XLON'"):
        parse_reference("ticker,exchange\nVOD,XLON\n", "ref.csv")
    with pytest.raises(ValueError, match="line 3: ticker KO is listed twice"):
        parse_reference("ticker,exchange\nKO,XNYS\nKO,XNAS\n")
    with pytest.raises(ValueError, match="missing column"):
        parse_reference("symbol,market\nKO,XNYS\n")
