"""Stale tickers: refused with their dates (409), listed as stale; a short gap is forecast.

The lake is the sample's six tickers to 2022-11-30 plus PG, whose prices stop a year early
(delisted, or an old export), and MRK, three NYSE sessions behind (a short halt).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bentos.cache import MemoryCache
from bentos.engine import ForecastEngine, Query
from bentos.errors import api_error
from bentos.fallback import FallbackStore
from bentos.narrative import TemplateNarrator
from bentos.openapi import document_errors
from bentos.predictor import Predictor
from bentos.schemas import BatchItem, StaleTickerBody, TickerOut
from finsimples.freshness import StaleTickerError
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from jobs.track_record import build_log
from tests.champion import WATERMARK
from tests.unit.serving.conftest import INFO
from training.forecaster import QuantileForecaster

STALE_LAST = date(2021, 11, 30)
HALTED_LAST = date(2022, 11, 25)  # then 11-28, 11-29, 11-30: three sessions behind


def add_ticker(lake: Lake, sample_wide: pd.DataFrame, ticker: str, until: date, tmp: Path) -> None:
    """Ingest ``ticker`` from the sample, from 2017 to ``until``."""
    path = tmp / f"{ticker}.csv"
    sample_wide.loc[sample_wide["Date"] >= "2017-01-01", ["Date", ticker]].to_csv(path, index=False)
    ingest_files(lake, [path], until=until)


@pytest.fixture
def stale_lake(lake_copy: Lake, sample_wide: pd.DataFrame, tmp_path: Path) -> Lake:
    add_ticker(lake_copy, sample_wide, "PG", STALE_LAST, tmp_path)
    add_ticker(lake_copy, sample_wide, "MRK", HALTED_LAST, tmp_path)
    return lake_copy


@pytest.fixture
def stale_predictor(small_forecaster: QuantileForecaster, stale_lake: Lake) -> Predictor:
    return Predictor.load(small_forecaster, INFO, stale_lake)


@pytest.fixture
def engine(stale_predictor: Predictor) -> Iterator[ForecastEngine]:
    engine = ForecastEngine(stale_predictor, TemplateNarrator(), MemoryCache(), FallbackStore())
    yield engine
    engine.close()


def test_tickers_say_which_are_stale(stale_predictor: Predictor) -> None:
    listed = {w.ticker: TickerOut(**vars(w)) for w in stale_predictor.tickers()}
    pg, mrk, ko = listed["PG"], listed["MRK"], listed["KO"]
    assert (pg.last_date, pg.sessions_behind, pg.stale, pg.forecastable) == (
        STALE_LAST,
        252,
        True,
        False,
    )
    assert (mrk.last_date, mrk.sessions_behind, mrk.stale, mrk.forecastable) == (
        HALTED_LAST,
        3,
        False,
        True,
    )
    assert (ko.last_date, ko.sessions_behind, ko.stale, ko.forecastable) == (
        WATERMARK,
        0,
        False,
        True,
    )


def test_a_stale_ticker_is_a_409_naming_its_dates(stale_predictor: Predictor) -> None:
    with pytest.raises(StaleTickerError) as caught:
        stale_predictor.forecast("PG", 5)
    with pytest.raises(StaleTickerError):
        stale_predictor.as_of("PG")  # the engine asks this first, before any cache look-up
    error = api_error(caught.value)
    assert error is not None
    assert error.status == 409
    body = error.body
    assert isinstance(body, StaleTickerBody)
    assert (body.error, body.field) == ("stale_ticker", "ticker")
    assert (body.last_date, body.lake_as_of) == (STALE_LAST, WATERMARK)
    assert (body.sessions_behind, body.days_behind, body.stale_after_sessions) == (252, 365, 5)
    assert "from 2021-11-30" in body.message
    assert "as-of date 2022-11-30" in body.message
    # In a batch the item keeps the dates through JSON.
    item = BatchItem(ticker="PG", status=error.status, error=body)
    again = BatchItem.model_validate_json(item.model_dump_json())
    assert again.error == body


def test_a_short_gap_is_forecast_as_of_its_own_last_date(stale_predictor: Predictor) -> None:
    forecast = stale_predictor.forecast("MRK", 5)
    assert forecast.as_of == HALTED_LAST
    assert forecast.path[0].date == date(2022, 11, 28)  # the session after its own last price
    assert stale_predictor.forecast("KO", 5).as_of == WATERMARK


def test_the_threshold_comes_from_the_caller(
    small_forecaster: QuantileForecaster, stale_lake: Lake
) -> None:
    strict = Predictor.load(small_forecaster, INFO, stale_lake, stale_after_sessions=2)
    with pytest.raises(StaleTickerError, match="3 XNYS sessions"):
        strict.forecast("MRK", 5)
    assert strict.forecast("KO", 5).as_of == WATERMARK


def test_batch_and_warm_up_skip_the_stale_ticker(
    engine: ForecastEngine, caplog: pytest.LogCaptureFixture
) -> None:
    ko, pg, mrk = engine.answer_many([Query.of(t, 5, "en") for t in ("KO", "PG", "MRK")])
    assert isinstance(pg, StaleTickerError)
    assert not isinstance(ko, Exception)
    assert ko.as_of == WATERMARK
    assert not isinstance(mrk, Exception)
    assert mrk.as_of == HALTED_LAST
    assert "PG" not in engine.popular_tickers(20)
    with caplog.at_level(logging.WARNING, logger="bentos.engine"):
        assert engine.warm(["PG"], (5,), ("en",)) == 0
    assert "warm-up skipped PG h=5 en: PG is stale" in caplog.text


def test_the_refresh_logs_the_stale_tickers(
    small_forecaster: QuantileForecaster, stale_lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bentos.predictor"):
        Predictor.load(small_forecaster, INFO, stale_lake)
    assert "1 stale tickers (more than 5 sessions behind the lake) are not forecast: PG" in (
        caplog.text
    )


def test_the_track_record_logs_only_tickers_priced_on_the_day(
    small_forecaster: QuantileForecaster, stale_lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.track_record"):
        logged = build_log(small_forecaster, "7", stale_lake.read_prices(), (1, 5))
    assert set(logged["ticker"]) == {"AAPL", "JNJ", "JPM", "KO", "WMT", "XOM"}
    assert "2 tickers have no price on 2022-11-30 and are not logged: MRK, PG" in caplog.text


def test_the_spec_documents_the_409() -> None:
    spec: dict[str, Any] = {"paths": {"/v1/forecast": {"post": {"responses": {"200": {}}}}}}
    document_errors(spec, {("post", "/v1/forecast"): (404, 409)})
    answer = spec["paths"]["/v1/forecast"]["post"]["responses"]["409"]
    assert "stale_ticker" in answer["description"]
    assert "unexplained_jump" in answer["description"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ConflictBody"
    schemas = spec["components"]["schemas"]
    assert {one["$ref"] for one in schemas["ConflictBody"]["anyOf"]} == {
        "#/components/schemas/StaleTickerBody",
        "#/components/schemas/UnexplainedJumpBody",
    }
    schema = schemas["StaleTickerBody"]
    assert {"last_date", "lake_as_of", "sessions_behind", "days_behind"} <= set(schema["required"])
    assert {"jump_date", "ratio", "likely"} <= set(schemas["UnexplainedJumpBody"]["required"])
