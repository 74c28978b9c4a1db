"""A ticker with a split no event explains: named at ingest, left out of training (said in the
run), refused by predict naming the date; its event brings it back."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finsimples.adjustment import JumpRule
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings
from jobs.common import JobError, open_registry
from jobs.predict import predict
from jobs.train import LEFT_OUT_TAG, leave_out_jumps, train
from tests.champion import LENIENT, SMALL, TICKERS

pytestmark = pytest.mark.integration


def test_an_unexplained_split_is_kept_out_of_training_and_refused_by_predict(
    tmp_path: Path, sample_wide: pd.DataFrame
) -> None:
    subset = sample_wide.loc[sample_wide["Date"].between("2015-01-01", "2022-11-30")]
    path = tmp_path / "prices.csv"
    subset[["Date", *TICKERS]].to_csv(path, index=False)
    split_day = subset["Date"].iloc[-40]
    closes = subset["PG"].where(subset["Date"] < split_day, subset["PG"] / 2).round(4)
    pg = tmp_path / "PG.csv"
    pd.DataFrame({"Date": subset["Date"], "Close": closes}).to_csv(pg, index=False)
    settings = Settings(
        state_dir=tmp_path / "state", training=SMALL, gate=LENIENT, gate_test_years=1
    )
    lake = Lake.from_settings(settings)

    report = ingest_files(lake, [path, pg], until=date(2022, 11, 30))

    assert [(j.ticker, j.date) for j in report.jumps] == [("PG", pd.Timestamp(split_day))]
    outcome = train(settings, "full")
    assert "1 ticker(s) left out of training, unexplained jumps: PG moved x" in outcome.message
    assert f"on {split_day.date()}, like a 2:1 split" in outcome.message
    registry = open_registry(settings)
    version = registry.get(str(outcome.version))
    assert version.tags[LEFT_OUT_TAG].startswith("1 ticker(s) left out of training")
    kept, _ = leave_out_jumps(lake.read_prices(), JumpRule())
    assert sorted(kept["ticker"].unique()) == sorted(TICKERS)
    assert outcome.promoted, outcome.message
    with pytest.raises(JobError, match=rf"PG moved x0\.\d+ on {split_day.date()}, like a 2:1"):
        predict(settings, "PG", 5)

    events = tmp_path / "events.csv"
    events.write_text(f"ticker,ex_date,kind,value\nPG,{split_day.date()},split,2\n")
    explained = ingest_files(lake, [events])
    assert explained.readjusted == ["PG"]
    kept, why = leave_out_jumps(lake.read_prices(), JumpRule())
    assert (why, "PG" in set(kept["ticker"])) == ("", True)
