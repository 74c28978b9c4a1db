"""A replica started on a 500-ticker lake (issue 26): it comes up, lists, searches and forecasts.

The lake holds 500 synthetic tickers x 3 years (``benchmarks.universe``: XNYS and BVMF, late
listings, delistings, halts); the champion is the serving tests' SMALL model fitted on 30 of
them, registered with the whole lake. The replica builds every ticker's latest features at
start, which is what grows with the universe.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from benchmarks.universe import Universe, UniverseSpec, generate_universe
from benchmarks.universe_files import listings
from bentos.ticker_search import MAX_LIMIT
from finsimples.lake import Lake
from finsimples.settings import Settings
from tests.champion import fit_small, register_champion
from tests.integration.api.conftest import ROOT, ApiServer, environment, wait_ready
from tests.servers import free_port, server_process

pytestmark = pytest.mark.integration
TICKERS = 500
MEMORY_BUDGET = 2**30  # issue 26: a replica's RSS within 1 GiB (there at 2,000 tickers)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return generate_universe(UniverseSpec(tickers=TICKERS, years=3, seed=1))


def _lake(state: Path, universe: Universe, tickers: list[str] | None = None) -> Lake:
    settings = Settings(state_dir=state)
    lake = Lake.from_settings(settings)
    prices = universe.prices
    if tickers is not None:
        prices = prices.loc[prices["ticker"].isin(tickers)]
    every = listings(universe)
    chosen = every if tickers is None else {t: every[t] for t in tickers}
    lake.write_prices(prices, source="synthetic universe", listings=chosen)
    return lake


@dataclass(frozen=True)
class Replica:
    server: ApiServer
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory, universe: Universe) -> Iterator[Replica]:
    """One replica (no keys, template narrator, in-process cache) on the 500-ticker lake."""
    root = tmp_path_factory.mktemp("universe")
    live = live_tickers(universe)
    with contextlib.chdir(root):  # MLflow writes its artifacts under the working directory
        small = fit_small(_lake(root / "train", universe, live[:30]))
        settings = Settings(state_dir=root / "state")
        version = register_champion(settings, _lake(settings.state_dir, universe), small)
    env = {"FINSIMPLES_STATE_DIR": str(settings.state_dir), "BENTOML_HOME": str(root / "bento")}
    command = [sys.executable, "-m", "bentos.package", "--prepare", "--version", version]
    command += ["--snapshot", str(root / "fallback.json.gz")]
    done = subprocess.run(
        command, env=environment(**env), cwd=root, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    env["FINSIMPLES_FALLBACK_SNAPSHOT_PATH"] = str(root / "fallback.json.gz")
    env["FINSIMPLES_REPLICA_ID"] = "universe"
    port = free_port()
    command = [str(Path(sys.executable).with_name("bentoml")), "serve"]
    command += ["bentos.service:ForecastService", "--working-dir", str(ROOT)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    server = ApiServer(f"http://127.0.0.1:{port}", "universe", root / "universe.log")
    with (
        contextlib.chdir(root),
        server_process(command, port, server.log, timeout=120, env=environment(**env)) as process,
    ):
        wait_ready(server)
        yield Replica(server, process)


@pytest.fixture(scope="module")
def replica(started: Replica) -> ApiServer:
    return started.server


def live_tickers(universe: Universe) -> list[str]:
    """Tickers trading up to the universe's last week (not delisted, not halted at the end)."""
    last = universe.prices.groupby("ticker")["date"].max()
    return sorted(last.index[last >= last.max() - pd.Timedelta(days=7)])


def test_the_replica_lists_every_ticker_in_pages(replica: ApiServer) -> None:
    with replica.http() as http:
        first = http.get("/v1/tickers", params={"limit": MAX_LIMIT}).json()
        cursor = first["next_cursor"]
        second = http.get("/v1/tickers", params={"limit": MAX_LIMIT, "cursor": cursor})
    assert first["total"] == TICKERS
    assert len(first["tickers"]) == MAX_LIMIT
    page = [t["ticker"] for t in second.json()["tickers"]]
    assert len(page) == MAX_LIMIT
    assert not set(page) & {t["ticker"] for t in first["tickers"]}


def test_the_page_search_finds_a_ticker_by_its_prefix(
    replica: ApiServer, universe: Universe
) -> None:
    wanted = live_tickers(universe)[0]
    with replica.http() as http:
        found = http.get(
            "/v1/tickers", params={"q": wanted[:3], "limit": 8, "forecastable": "true"}
        ).json()
    listed = [t["ticker"] for t in found["tickers"]]
    assert listed[0].startswith(wanted[:3])
    assert wanted in listed or found["total"] > 8


def test_live_tickers_are_forecast_and_delisted_ones_refused(
    replica: ApiServer, universe: Universe
) -> None:
    live = live_tickers(universe)
    gone = sorted(set(universe.tickers["ticker"]) - set(live))
    with replica.http() as http:
        answers = [
            http.post("/v1/forecast", json={"ticker": t, "horizon_days": 5, "locale": "en"})
            for t in (live[0], live[len(live) // 2], live[-1])
        ]
        refused = http.post("/v1/forecast", json={"ticker": gone[0], "horizon_days": 5})
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["path"]) == 5
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "stale_ticker"


def test_the_replica_stays_within_its_memory_budget(started: Replica, universe: Universe) -> None:
    with started.server.http() as http:  # answers cached first: memory as it serves
        for ticker in live_tickers(universe)[:20]:
            answer = http.post("/v1/forecast", json={"ticker": ticker, "horizon_days": 30})
            assert answer.status_code == 200, answer.text
    root = psutil.Process(started.process.pid)
    family = [root, *root.children(recursive=True)]
    rss = sum(p.memory_info().rss for p in family)
    each = ", ".join(f"{p.name()} {p.memory_info().rss / 2**20:.0f} MiB" for p in family)
    assert rss < MEMORY_BUDGET, f"{rss / 2**20:.0f} MiB: {each}"
