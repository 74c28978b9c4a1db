"""A stale ticker over HTTP: a 409 naming its dates, an item error in a batch, marked in /tickers.

Replica C serves v2 (replica B's model store, linked) over a lake of its own: the six sample
tickers to 2022-11-30, PG stopping a year early and MRK three NYSE sessions behind. The shared
lake stays as the other modules expect it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from finsimples.settings import Settings
from tests.champion import WATERMARK, write_lake
from tests.integration.api.conftest import ApiServer, ApiStack, Registry, _serve, wait_ready
from tests.unit.serving.test_stale_tickers import HALTED_LAST, STALE_LAST, add_ticker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replica_c(
    api_stack: ApiStack,
    model_registry: Registry,
    sample_wide: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("stale")
    lake = write_lake(Settings(lake_uri=str(root / "lake")), sample_wide, root)
    add_ticker(lake, sample_wide, "PG", STALE_LAST, root)
    add_ticker(lake, sample_wide, "MRK", HALTED_LAST, root)
    home = root / "bentoml-c"
    home.mkdir()
    (home / "models").symlink_to(model_registry.root / "bentoml-b" / "models")
    env = model_registry.env | {
        "FINSIMPLES_LAKE_URI": str(root / "lake"),
        "BENTOML_HOME": str(home),
        "FINSIMPLES_FALLBACK_SNAPSHOT_PATH": str(root / "no-snapshot.json.gz"),
    }
    with contextlib.ExitStack() as stack:
        server = _serve(stack, root, "replica-c", env)
        wait_ready(server)
        yield server


def test_a_stale_ticker_is_a_409_with_its_dates(replica_c: ApiServer) -> None:
    with replica_c.http() as http:
        refused = http.post("/v1/forecast", json={"ticker": "pg", "horizon_days": 5})
        halted = http.post("/v1/forecast", json={"ticker": "MRK", "horizon_days": 5})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert (body["error"], body["field"]) == ("stale_ticker", "ticker")
    assert (body["last_date"], body["lake_as_of"]) == ("2021-11-30", WATERMARK.isoformat())
    assert (body["sessions_behind"], body["days_behind"]) == (252, 365)
    assert "2021-11-30" in body["message"]
    # Three sessions behind: forecast as of its own last price.
    assert halted.status_code == 200, halted.text
    assert halted.json()["as_of"] == HALTED_LAST.isoformat()
    assert halted.json()["path"][0]["date"] == date(2022, 11, 28).isoformat()


def test_in_a_batch_the_stale_ticker_is_one_item(replica_c: ApiServer) -> None:
    with replica_c.http() as http:
        response = http.post(
            "/v1/forecast/batch", json={"tickers": ["KO", "PG"], "horizon_days": 5}
        )
    assert response.status_code == 200, response.text
    ko, pg = response.json()["results"]
    assert (ko["status"], ko["answer"]["as_of"]) == (200, WATERMARK.isoformat())
    assert (pg["status"], pg["error"]["error"]) == (409, "stale_ticker")
    assert (pg["error"]["last_date"], pg["error"]["sessions_behind"]) == ("2021-11-30", 252)


def test_tickers_mark_it_and_the_spec_lists_the_409(replica_c: ApiServer) -> None:
    with replica_c.http() as http:
        tickers = {t["ticker"]: t for t in http.get("/v1/tickers").json()["tickers"]}
        spec = http.get("/docs.json").json()
    pg, mrk = tickers["PG"], tickers["MRK"]
    assert (pg["last_date"], pg["stale"], pg["forecastable"], pg["sessions_behind"]) == (
        "2021-11-30",
        True,
        False,
        252,
    )
    assert (mrk["stale"], mrk["forecastable"], mrk["sessions_behind"]) == (False, True, 3)
    assert not tickers["KO"]["stale"]
    answers = spec["paths"]["/v1/forecast"]["post"]["responses"]
    # A 409 is a stale ticker or an unexplained jump (a split no corporate event explains).
    assert answers["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ConflictBody")
    conflict = spec["components"]["schemas"]["ConflictBody"]["anyOf"]
    assert {one["$ref"].rsplit("/", 1)[1] for one in conflict} == {
        "StaleTickerBody",
        "UnexplainedJumpBody",
    }


def test_the_log_says_which_tickers_are_stale(replica_c: ApiServer) -> None:
    log = Path(replica_c.log).read_text(errors="replace")
    assert "stale tickers (more than 5 sessions behind the lake) are not forecast: PG" in log
