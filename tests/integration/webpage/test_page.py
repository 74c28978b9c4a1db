"""The investor page in headless Chromium against real `bentoml serve` replicas.

Replica B (auth off, template narrator) serves the page for most tests; replica A (keys on)
checks the key prompt. Every page is opened with a route that lets only 127.0.0.1 through and
records anything else, and with console errors collected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.integration.api.conftest import KEYS, ApiServer
from tests.integration.webpage.conftest import AXE

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 20_000


@dataclass
class Session:
    """A page plus what it did: console errors, requests refused for leaving 127.0.0.1."""

    page: Any
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    bytes_by_url: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """Opens pages in fresh contexts (closed after the test)."""
    contexts: list[Any] = []

    def opener(viewport: dict[str, int] = DESKTOP, bypass_csp: bool = False) -> Session:
        context = browser.new_context(viewport=viewport, bypass_csp=bypass_csp)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        session = Session(page)

        def guard(route: Any) -> None:
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                session.outside.append(route.request.url)
                route.abort()

        def count(response: Any) -> None:
            try:
                session.bytes_by_url[response.url] = len(response.body())
            except Exception:  # a redirect has no body
                session.bytes_by_url[response.url] = 0

        page.route("**/*", guard)
        page.on("console", lambda m: m.type == "error" and session.errors.append(m.text))
        page.on("pageerror", lambda exc: session.errors.append(str(exc)))
        page.on("response", count)
        return session

    yield opener
    for context in contexts:
        context.close()


def wait_result(page: Any) -> None:
    page.locator("#result svg path.band-outer").wait_for()
    page.locator("#narrative").wait_for()


def edges(page: Any, selector: str) -> tuple[list[float], list[float]]:
    """A band's upper and lower edges mapped back to prices through the chart's y scale."""
    svg = page.locator("#chart svg")
    lo, hi = map(float, svg.get_attribute("data-domain").split())
    bottom, top = map(float, svg.get_attribute("data-range").split())
    d = page.locator(selector).get_attribute("d")
    ys = [float(y) for _, y in re.findall(r"[ML]([\d.\-]+),([\d.\-]+)", d)]
    prices = [lo + (bottom - y) / (bottom - top) * (hi - lo) for y in ys]
    half = len(prices) // 2
    return prices[:half], prices[half:][::-1]


def test_pick_draws_the_fan_chart_from_the_api_answer(
    replica_b: ApiServer, open_page: Any, tmp_path: Path
) -> None:
    session = open_page()
    page = session.page
    page.goto(f"{replica_b.url}/")  # redirects to the page
    assert urlsplit(page.url).path == "/app/"
    page.locator("#ticker").fill("K")
    page.get_by_role("option", name="KO", exact=True).click()
    page.locator("#horizon").fill("7")
    with page.expect_response(lambda r: r.url.endswith("/v1/forecast")) as forecast:
        page.get_by_role("button", name="Ver previsão").click()
    answer = forecast.value.json()
    wait_result(page)

    assert (answer["ticker"], answer["horizon_days"], answer["locale"]) == ("KO", 7, "pt-BR")
    assert "ticker=KO&h=7&lang=pt-BR" in page.url
    lo_key, hi_key = "q0.05", "q0.95"
    span = float(page.locator("#chart svg").get_attribute("data-domain").split()[1])
    for selector, (low, high) in {
        "path.band-outer": (lo_key, hi_key),
        "path.band-inner": ("q0.25", "q0.75"),
    }.items():
        upper, lower = edges(page, selector)
        # The fan opens at the last price, then one point per path day.
        assert upper[0] == pytest.approx(answer["last_price"], rel=1e-3)
        expected_upper = [p["prices"][high] for p in answer["path"]]
        expected_lower = [p["prices"][low] for p in answer["path"]]
        assert upper[1:] == pytest.approx(expected_upper, abs=span * 1e-4)
        assert lower[1:] == pytest.approx(expected_lower, abs=span * 1e-4)
    assert page.locator("#narrative").inner_text() == answer["narrative"]
    provenance = page.locator("#provenance").inner_text()
    assert f"v{answer['provenance']['model_version']}" in provenance
    watermark = answer["provenance"]["data_watermark"][:10].split("-")
    assert "/".join(reversed(watermark)) in provenance  # dd/mm/yyyy in pt-BR
    rows = page.locator("#path-table tbody tr")
    assert rows.count() == 7
    assert page.locator("#track-table tbody tr").count() >= 1
    assert "não uma recomendação" in page.locator(".note").inner_text()
    assert session.errors == []
    assert session.outside == []
    shot = tmp_path / "page-desktop.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")


def test_first_render_and_bytes(replica_b: ApiServer, open_page: Any, tmp_path: Path) -> None:
    """Figures, not assertions on milliseconds: printed and written to a JSON summary."""
    page_url = f"{replica_b.url}/app/?ticker=JNJ&h=5&lang=en"
    warm = open_page()  # the first answer of a ticker is computed; the figure is the page's
    warm.page.goto(page_url)
    wait_result(warm.page)
    session = open_page()
    page = session.page
    page.goto(page_url)
    wait_result(page)
    timing = page.evaluate(
        """() => ({
            fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
            forecast: performance.getEntriesByName('forecast-rendered')[0].startTime,
            dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
        })"""
    )
    page_files = {u: n for u, n in session.bytes_by_url.items() if "/app/" in u}
    summary = {
        "first_contentful_paint_ms": timing["fcp"],
        "dom_content_loaded_ms": timing["dcl"],
        "forecast_rendered_ms": timing["forecast"],
        "page_bytes": sum(page_files.values()),
        "page_files": page_files,
        "api_bytes": sum(n for u, n in session.bytes_by_url.items() if "/v1/" in u),
    }
    (tmp_path / "first-render.json").write_text(json.dumps(summary, indent=2))
    print(f"\nfirst render: {json.dumps(summary)}\nwritten to {tmp_path / 'first-render.json'}")
    assert summary["page_bytes"] > 0
    assert session.errors == []
    assert session.outside == []


def test_language_switch(replica_b: ApiServer, open_page: Any) -> None:
    session = open_page()
    page = session.page
    page.goto(f"{replica_b.url}/app/?ticker=KO&h=5")
    wait_result(page)
    before = page.locator("#narrative").inner_text()
    assert page.locator("label[for=horizon]").inner_text().startswith("Horizonte")
    with page.expect_response(lambda r: r.url.endswith("/v1/forecast")) as forecast:
        page.locator("#lang").select_option("en")
    assert forecast.value.json()["locale"] == "en"
    changed = "document.querySelector('#narrative').textContent !== " + json.dumps(before)
    page.wait_for_function(changed)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("label[for=horizon]").inner_text().startswith("Horizon (trading days")
    assert "not advice" in page.locator(".note").inner_text()
    assert page.locator("#narrative").inner_text() == forecast.value.json()["narrative"]
    assert "lang=en" in page.url
    assert session.errors == []


def test_unknown_ticker_suggestions_load_a_forecast(replica_b: ApiServer, open_page: Any) -> None:
    page = open_page().page
    page.goto(f"{replica_b.url}/app/?ticker=KOO&h=3&lang=en")
    suggestion = page.locator("#error a", has_text="KO")
    suggestion.first.wait_for()
    assert "KOO" in page.locator("#error").inner_text()
    assert page.locator("#result").is_hidden()
    suggestion.first.click()
    wait_result(page)
    assert page.locator("#result-title").inner_text().startswith("KO:")
    assert "ticker=KO&h=3&lang=en" in page.url
    assert page.locator("#error").is_hidden()


def test_search_as_you_type_asks_the_api_for_one_short_page(
    replica_b: ApiServer, open_page: Any
) -> None:
    session = open_page()
    page = session.page
    page.goto(f"{replica_b.url}/app/?lang=en")
    page.locator("#ticker").wait_for()
    with page.expect_response(lambda r: "/v1/tickers?" in r.url and "q=mobil" in r.url) as asked:
        page.locator("#ticker").fill("mobil")  # a name, not a ticker: the API searches names
    assert asked.value.status == 200
    option = page.get_by_role("option", name="XOM", exact=True)
    option.wait_for()
    assert page.locator("#ticker-list [role=option]").count() == 1
    assert option.get_attribute("title") == "Exxon Mobil Corp."
    searches = [u for u in session.bytes_by_url if "/v1/tickers" in u]
    assert searches
    assert all("limit=8" in u and "forecastable=true" in u for u in searches)  # never the list
    option.click()
    assert page.locator("#ticker").input_value() == "XOM"
    assert session.errors == []
    assert session.outside == []


def test_keyboard_alone_completes_a_forecast(replica_b: ApiServer, open_page: Any) -> None:
    session = open_page()
    page = session.page
    page.goto(f"{replica_b.url}/app/?lang=en")
    page.locator("#ticker").wait_for()
    keyboard = page.keyboard
    keyboard.press("Tab")  # the skip link
    keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ticker"
    # Typed fast, before the search's answer is back: the keys wait for the list they act on.
    keyboard.type("JN")
    keyboard.press("ArrowDown")
    keyboard.press("Enter")
    expect(page.locator("#ticker")).to_have_value("JNJ")  # once the answer is in
    keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "horizon"
    keyboard.press("Control+A")
    keyboard.type("10")
    keyboard.press("Enter")  # submits the form
    wait_result(page)
    assert page.locator("#result-title").inner_text() == "JNJ: next 10 trading days"
    assert page.locator("#path-table tbody tr").count() == 10
    assert session.errors == []


@pytest.mark.parametrize(
    ("status", "words"), [(429, "Too many requests"), (503, "service is busy")]
)
def test_throttled_or_unavailable_shows_a_message_not_a_blank_chart(
    replica_b: ApiServer, open_page: Any, status: int, words: str
) -> None:
    page = open_page().page
    body = {"error": "x", "message": "x", "retry_after": 7}

    def refuse(route: Any) -> None:
        route.fulfill(status=status, json=body, headers={"Retry-After": "7"})

    page.route("**/v1/forecast", refuse)
    page.goto(f"{replica_b.url}/app/?ticker=KO&h=5&lang=en")
    page.locator("#error").wait_for()
    text = page.locator("#error").inner_text()
    assert words in text
    assert "7 s" in text
    assert page.locator("#result").is_hidden()


def test_no_serious_accessibility_violations(replica_b: ApiServer, open_page: Any) -> None:
    # bypass_csp: the page's CSP allows no injected script, and axe is injected by the test.
    page = open_page(bypass_csp=True).page
    found: dict[str, list[dict[str, Any]]] = {}
    for name, url in {
        "forecast": "/app/?ticker=KO&h=5&lang=pt-BR",
        "unknown ticker": "/app/?ticker=KOO&h=5&lang=en",
    }.items():
        page.goto(f"{replica_b.url}{url}")
        page.locator("#result svg, #error a").first.wait_for()
        page.add_script_tag(content=AXE.read_text())
        result = page.evaluate("async () => await axe.run(document)")
        found[name] = [
            {"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"])}
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert result["passes"], "axe ran no check"
    assert found == {"forecast": [], "unknown ticker": []}


def test_phone_width(replica_b: ApiServer, open_page: Any, tmp_path: Path) -> None:
    session = open_page(PHONE)
    page = session.page
    page.goto(f"{replica_b.url}/app/?ticker=XOM&h=30&lang=pt-BR")
    wait_result(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    chart = page.locator("#chart svg").bounding_box()
    assert chart is not None
    assert 300 <= chart["width"] <= PHONE["width"]
    shot = tmp_path / "page-phone-360.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    assert session.errors == []


def test_key_prompt_when_the_server_asks_for_a_key(replica_a: ApiServer, open_page: Any) -> None:
    page = open_page().page
    page.goto(f"{replica_a.url}/app/?ticker=WMT&h=2&lang=en")
    page.locator("#key-box").wait_for()
    assert "API key" in page.locator("#error").inner_text()
    page.locator("#api-key").fill(KEYS["contract"])
    page.locator("#api-key").press("Enter")
    wait_result(page)
    assert page.locator("#result-title").inner_text().startswith("WMT:")
    assert "fs_" not in page.url  # the key never goes into a shareable link
    stored = page.evaluate("sessionStorage.getItem('finsimples.apiKey')")
    assert stored == KEYS["contract"]
