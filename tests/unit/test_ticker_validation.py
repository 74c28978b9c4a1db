"""A ticker is validated where it enters (API schema, CLI, ingest), and the inner functions that
put one into a cache key, a file path or an LLM prompt refuse what would be dangerous there."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from bentos.cache import forecast_key, narrative_key
from bentos.narrative import ForecastFacts, build_messages
from bentos.schemas import Ticker
from finsimples.ingest import IngestError, read_price_file
from finsimples.lake import Lake
from finsimples.schemas import check_ticker, is_valid_ticker
from finsimples.settings import Settings
from finsimples.storage import open_location
from finsimples.tickers import Listing
from jobs.common import JobError
from jobs.predict import predict

REAL = ["PETR4", "BRK.B", "BF-B", "BOVA11", "7203", "GOOG", "A"]
HOSTILE = {
    "path traversal": "../../etc/passwd",
    "dot-dot": "..",
    "dot": ".",
    "leading dash": "-RF",
    "slash": "AAPL/..",
    "CR LF command": "AAPL\r\nDEL *",
    "trailing newline": "AAPL\n",
    "NUL": "AA\x00PL",
    "Cyrillic A": "\u0410APL",
    "Greek Alpha": "\u0391APL",
    "fullwidth": "\uff21\uff21\uff30\uff2c",
    "RTL override": "\u202eLPAA",
    "zero-width joiner": "AA\u200dPL",
    "zero-width space": "AAPL\u200b",
    "BOM": "\ufeffAAPL",
    "13 characters": "A" * 13,
    "very long": "A" * 10_000,
    "empty": "",
    "space": "AA PL",
    "glob": "PE*",
    "key separator": "AAPL:5",
    "template": "${jndi:x}",
    "percent-encoded CRLF": "AAPL%0D%0A",
}
hostile = pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))


@pytest.mark.parametrize("value", REAL)
def test_real_tickers_pass_everywhere(value: str) -> None:
    assert check_ticker(value) == value
    assert TypeAdapter(Ticker).validate_python(value.lower()) == value.lower()  # any case in
    assert forecast_key("7", date(2024, 3, 1), value, 5, "en").count(":") == 5


@hostile
def test_the_check_refuses_and_its_message_is_safe_to_log(value: str) -> None:
    assert not is_valid_ticker(value)
    with pytest.raises(ValueError, match="expected a ticker matching") as refused:
        check_ticker(value)
    message = str(refused.value)
    assert message.isprintable()  # CR, LF, NUL, RTL and zero-width characters come escaped
    assert len(message) < 120  # and a 10,000-character value comes cut


@hostile
def test_the_api_schema_refuses_at_the_boundary(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Ticker).validate_python(value)


@hostile
def test_cache_keys_refuse(value: str) -> None:
    for build in (forecast_key, narrative_key):
        with pytest.raises(ValueError, match="cache key ticker="):
            build("7", date(2024, 3, 1), value, 5, "en")


def facts(ticker: str) -> ForecastFacts:
    return ForecastFacts(
        ticker=ticker,
        horizon_days=5,
        as_of=date(2024, 3, 1),
        last_price=10.0,
        median_price=10.1,
        low_price=9.0,
        high_price=11.0,
        interval_level=0.9,
        prob_gain=0.5,
        annual_volatility=0.3,
        model_version="7",
        locale="en",
    )


@hostile
def test_the_prompt_builder_only_gets_a_checked_ticker(value: str) -> None:
    # The facts are what build_messages formats into the LLM prompt: they refuse to exist.
    with pytest.raises(ValueError, match="expected a ticker matching"):
        facts(value)


def test_the_prompt_holds_the_checked_ticker_on_its_own_line() -> None:
    user = build_messages(facts("BRK.B"))[1]["content"]
    assert isinstance(user, str)
    assert user.splitlines()[0] == "ticker: BRK.B"


@pytest.mark.parametrize("value", ["AAPL\r\nDEL *", "../../etc", "\u0410APL", "AA\u200dPL"])
def test_the_lake_refuses_to_store_a_bad_ticker(tmp_path: Path, value: str) -> None:
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-03-01", "2024-03-01"]),
            "ticker": ["KO", value],
            **{c: [1.0, 1.0] for c in ("open", "high", "low", "close", "adj_close", "volume")},
        }
    )
    with pytest.raises(ValueError, match="expected a ticker matching"):
        lake.write_prices(frame, source="test")
    listing = {value: Listing(value, "XNYS", "USD")}
    with pytest.raises(ValueError, match="expected a ticker matching"):
        lake.write_prices(frame.iloc[:1], source="test", listings=listing)
    assert lake.snapshot().version == 0
    assert not [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]


@pytest.mark.parametrize("part", ["..", "../etc", "prices/../../etc", "a/./b", ".", "x\x00"])
def test_lake_paths_refuse_dot_segments_and_nul(tmp_path: Path, part: str) -> None:
    location = open_location(str(tmp_path), Settings())
    assert location.path("prices", "year=2024/0000000001-ab.parquet").startswith(str(tmp_path))
    with pytest.raises(ValueError, match="lake path part"):
        location.path("prices", part)


@pytest.mark.parametrize(
    "value", ["AA\nPL", "../etc", "\u0410APL", "AA\u200dPL", "A" * 500, "\u017fpy", "\ufb01"]
)
def test_the_predict_command_refuses_before_reading_anything(tmp_path: Path, value: str) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    with pytest.raises(JobError, match="does not look like a ticker"):
        predict(settings, value, 5)
    assert not (tmp_path / "state").exists()


# "\u017fpy" (long s) and "\ufb01" (the fi ligature) upper-case to SPY and FI: refused, not mapped.
@pytest.mark.parametrize(
    "value", ["../../etc", "AA\u200dPL", "\u0410APL", "AA PL", "A" * 40, "\u017fpy", "\ufb01"]
)
def test_ingest_refuses_bad_tickers_in_each_layout(tmp_path: Path, value: str) -> None:
    long = tmp_path / "long.csv"
    long.write_text(f"date,ticker,close\n2024-03-01,KO,60\n2024-03-01,{value},1\n")
    wide = tmp_path / "wide.csv"
    wide.write_text(f"Date,KO,{value}\n2024-03-01,60,1\n")
    one = tmp_path / "one.csv"
    one.write_text("Date,Open,High,Low,Close,Volume\n2024-03-01,1,1,1,1,10\n")
    for path, ticker in ((long, None), (wide, None), (one, value)):
        with pytest.raises(IngestError, match="ticker"):
            read_price_file(path, ticker=ticker, today=date(2024, 3, 2))
