"""`finsimples predict` of a ticker whose prices stop a year before the lake's: a precise refusal.

It used to say the ticker "has 0 recent prices" though the lake holds years of its history.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from cli.main import app
from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from finsimples.settings import Settings


def test_predict_names_the_last_date_and_the_gap(tmp_path: Path, sample_wide: pd.DataFrame) -> None:
    lake = Lake.from_settings(Settings(lake_uri=str(tmp_path / "lake")))
    for ticker, until in (("KO", date(2022, 11, 30)), ("PG", date(2021, 11, 30))):
        path = tmp_path / f"{ticker}.csv"
        sample_wide.loc[sample_wide["Date"] >= "2021-01-01", ["Date", ticker]].to_csv(path)
        ingest_files(lake, [path], until=until)

    result = CliRunner().invoke(
        app, ["predict", "pg"], env={"FINSIMPLES_LAKE_URI": str(tmp_path / "lake")}
    )
    assert result.exit_code == 1
    message = " ".join(result.output.split())  # rich wraps long lines
    assert (
        "PG is stale: its last price is from 2021-11-30, 252 XNYS sessions (365 calendar days) "
        "before the lake's as-of date 2022-11-30"
    ) in message
    assert "has 0 recent prices" not in message
    # No champion was needed to say so: the state folder holds no MLflow store.
    assert not (tmp_path / ".finsimples" / "mlflow.db").exists()
