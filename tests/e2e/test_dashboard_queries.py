"""Every Grafana panel's query returns data from the real Prometheus scraping the stack.

No Grafana server can run here, so the dashboard is proven instead: light API traffic goes
through NGINX (one LLM answer fails first, so the narrator retries), Prometheus scrapes the
replicas, then each query of the committed dashboard (``$__rate_interval`` replaced by ``1m``,
as Grafana would for a 15 s scrape interval) runs through ``/api/v1/query`` and must return at
least one series. No panel is decorative: a query on a series nobody exports fails here,
including the model gauges and the exporters' series.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitoring.dashboard import panel_queries, substitute
from tests.e2e.conftest import KEYS, TICKERS, RunningStack
from tests.e2e.load import send_forecast
from tests.fakes.openai_server import Reply, ServerError

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana" / "finsimples.json"
QUERIES = panel_queries(json.loads(DASHBOARD.read_text()))
RATE_INTERVAL = "1m"
SCRAPE_SECONDS = 5  # the stack's Prometheus (deploy/programs.py)
WAIT_SECONDS = 60  # for a series still missing after the first scrapes
Result = list[dict[str, Any]]


def query(prometheus: str, expr: str, at: float | None = None) -> Result:
    """The instant vector of ``expr`` now, or at ``at`` (Unix time)."""
    params: dict[str, str | float] = {"query": expr}
    if at is not None:
        params["time"] = at
    reply = httpx.get(f"{prometheus}/api/v1/query", params=params, timeout=10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def send_light_traffic(stack: RunningStack) -> None:
    """About 70 forecasts through NGINX on the dashboard's key, a few narrations on the LLM."""
    key = KEYS["dashboard"]
    assert stack.llm is not None
    # The next LLM request fails with a 500: the narrator retries it (its retry counter).
    stack.llm.script(ServerError(), Reply())
    with httpx.Client(timeout=30) as client:
        # A query no other test sends first, so its narrative is not cached: an LLM call.
        first = send_forecast(client, stack.api, key, "WMT", 23, "en")
        assert first.status == 200, first
        for i in range(72):
            # Repeated queries: cache hits as well as misses, every replica through NGINX.
            answer = send_forecast(client, stack.api, key, TICKERS[i % 6], 1 + i % 4)
            assert answer.status == 200, answer
            time.sleep(0.1)  # under the key's rate budget


@pytest.fixture(scope="module")
def results(running_stack: RunningStack) -> dict[str, Result]:
    """Each query's result, evaluated just after the traffic has been scraped.

    A query still empty then is asked again at the current time until WAIT_SECONDS (a series
    that is slow to appear), so an empty answer means the series is not exported at all.
    """
    prometheus = running_stack.stack.urls.prometheus
    assert prometheus, "the stack runs without Prometheus (apt-get install prometheus)"
    send_light_traffic(running_stack)
    scraped = time.time() + 2.5 * SCRAPE_SECONDS
    time.sleep(scraped - time.time())
    found = {e: query(prometheus, substitute(e, RATE_INTERVAL), scraped) for _, e in QUERIES}
    deadline = time.monotonic() + WAIT_SECONDS
    while not all(found.values()) and time.monotonic() < deadline:
        time.sleep(SCRAPE_SECONDS)
        for expr in [e for e, result in found.items() if not result]:
            found[expr] = query(prometheus, substitute(expr, RATE_INTERVAL))
    for title, expr in QUERIES:  # the report: what each panel showed
        values = [float(series["value"][1]) for series in found[expr]]
        shown = ", ".join("NaN" if math.isnan(v) else f"{v:.3g}" for v in values) or "NO DATA"
        print(f"{title:32} {len(values)} series: {shown}  <- {expr.splitlines()[0][:70]}")
    # Counters a replica creates at their first event: shown as 0 by the panels until then.
    sparse = '{__name__=~"finsimples_(fallbacks|narrator_events)_total"}'
    for series in query(prometheus, f"sum by (__name__, event, reason) ({sparse})"):
        print("exported:", series["metric"], series["value"][1])
    return found


@pytest.mark.parametrize(
    ("title", "expr"), QUERIES, ids=[f"{t}:{i}" for i, (t, _) in enumerate(QUERIES)]
)
def test_panel_query_returns_data(results: dict[str, Result], title: str, expr: str) -> None:
    series = results[expr]
    assert series, f"panel {title!r}: no series for {substitute(expr, RATE_INTERVAL)}"
