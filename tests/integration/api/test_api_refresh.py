"""New prices in the lake are served without a rebuild or a restart.

Runs after the other API modules (file order): it moves the shared lake one trading day on.
"""

from __future__ import annotations

import httpx
import pytest

from finsimples.ingest import ingest_files
from finsimples.lake import Lake
from tests.integration.api.conftest import ApiServer, Registry
from tests.servers import wait_until

pytestmark = pytest.mark.integration


def as_of(server: ApiServer) -> str:
    with server.http() as http:
        response = http.post("/v1/forecast", json={"ticker": "KO", "horizon_days": 5})
    assert response.status_code == 200, response.text
    return str(response.json()["as_of"])


def test_a_new_trading_day_is_picked_up(replica_b: ApiServer, model_registry: Registry) -> None:
    assert as_of(replica_b) == "2022-11-30"
    lake = Lake.from_settings(model_registry.settings)
    ingest_files(lake, [model_registry.root / "prices.csv"], next_day=True)
    wait_until(lambda: as_of(replica_b) == "2022-12-01", 15, "the new trading day")
    tickers = httpx.get(f"{replica_b.url}/v1/tickers", timeout=10).json()
    assert tickers["lake_version"] == lake.snapshot().version
    assert {t["last_date"] for t in tickers["tickers"]} == {"2022-12-01"}
