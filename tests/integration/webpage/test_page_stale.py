"""The page's answer to a stale ticker (409 stale_ticker): its last date and the gap, in words."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import ApiServer
from tests.integration.webpage.test_page import open_page  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

STALE: dict[str, Any] = {
    "error": "stale_ticker",
    "message": "PG is stale: its last price is from 2021-11-30, ...",
    "field": "ticker",
    "suggestions": [],
    "retry_after": None,
    "last_date": "2021-11-30",
    "lake_as_of": "2022-11-30",
    "sessions_behind": 252,
    "days_behind": 365,
    "stale_after_sessions": 5,
}


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "pt-BR",
            "PG não tem preços desde 30/11/2021: são 252 pregões antes dos dados mais "
            "recentes (30/11/2022)",
        ),
        (
            "en",
            "PG has no prices since 2021-11-30: 252 trading sessions before the newest data "
            "(2022-11-30)",
        ),
    ],
    ids=["pt-BR", "en"],
)
def test_a_stale_ticker_is_explained_not_charted(
    replica_b: ApiServer,
    open_page: Any,  # noqa: F811  (fixture)
    lang: str,
    words: str,
) -> None:
    page = open_page().page
    page.route("**/v1/forecast", lambda route: route.fulfill(status=409, json=STALE))
    page.goto(f"{replica_b.url}/app/?ticker=PG&h=5&lang={lang}")
    page.locator("#error").wait_for()
    assert words in page.locator("#error").inner_text()
    assert page.locator("#result").is_hidden()
