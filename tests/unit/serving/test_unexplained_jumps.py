"""A ticker whose recent prices jump like a split no event explains: the API answers 409
naming the date; once the event is ingested it is forecast again, from its close as traded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bentos.errors import api_error
from bentos.predictor import Predictor, UnexplainedJumpError
from bentos.schemas import UnexplainedJumpBody
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from tests.unit.serving.conftest import INFO
from training.forecaster import QuantileForecaster

SPLIT_AT = 20  # sessions before the end


def add_split_ticker(lake: Lake, sample_wide: pd.DataFrame, tmp: Path) -> pd.Timestamp:
    """PG from the sample, as traded: its closes halve from a day in the recent window."""
    rows = sample_wide.loc[
        (sample_wide["Date"] >= "2017-01-01") & (sample_wide["Date"] <= "2022-11-30"),
        ["Date", "PG"],
    ].reset_index(drop=True)
    split_day = rows["Date"].iloc[-SPLIT_AT]
    close = rows["PG"].where(rows["Date"] < split_day, rows["PG"] / 2)
    path = tmp / "PG.csv"
    pd.DataFrame({"Date": rows["Date"], "Close": close.round(4)}).to_csv(path, index=False)
    ingest_files(lake, [path])
    return pd.Timestamp(split_day)


def test_a_jump_is_a_409_naming_its_date_until_its_event_arrives(
    small_forecaster: QuantileForecaster, lake_copy: Lake, sample_wide: pd.DataFrame, tmp_path: Path
) -> None:
    split_day = add_split_ticker(lake_copy, sample_wide, tmp_path)
    predictor = Predictor.load(small_forecaster, INFO, lake_copy)

    with pytest.raises(UnexplainedJumpError) as caught:
        predictor.forecast("PG", 5)
    error = api_error(caught.value)
    assert error is not None
    assert error.status == 409
    body = error.body
    assert isinstance(body, UnexplainedJumpBody)
    assert (body.error, body.jump_date, body.likely) == (
        "unexplained_jump",
        split_day.date(),
        "a 2:1 split",
    )
    assert f"PG moved x0.493 on {split_day.date()}, like a 2:1 split" in body.message
    assert predictor.forecast("KO", 5).ticker == "KO"  # the others are served

    events = tmp_path / "events.csv"
    events.write_text(f"ticker,ex_date,kind,value\nPG,{split_day.date()},split,2\n")
    ingest_files(lake_copy, [events])
    assert predictor.refresh(force=True)

    forecast = predictor.forecast("PG", 5)
    last = lake_copy.read_prices(["PG"]).iloc[-1]
    assert forecast.last_price == last["close"]  # as traded
    assert last["adj_close"] == pytest.approx(last["close"])  # no event after the last day
    first = lake_copy.read_prices(["PG"]).iloc[0]
    assert first["adj_close"] == pytest.approx(first["close"] / 2)  # history adjusted
