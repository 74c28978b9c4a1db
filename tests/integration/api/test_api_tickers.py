"""/v1/tickers over real HTTP: search, pagination, the 422s naming the field, the spec."""

from __future__ import annotations

from typing import Any

import pytest

from bentos.ticker_search import MAX_LIMIT
from tests.champion import TICKERS
from tests.integration.api.conftest import KEYS, ApiServer

pytestmark = pytest.mark.integration
KEY = KEYS["tickers"]


def get(server: ApiServer, **params: Any) -> Any:
    with server.http(KEY) as http:
        return http.get("/v1/tickers", params=params)


def test_without_parameters_the_answer_keeps_its_shape(replica_a: ApiServer) -> None:
    body = get(replica_a).json()
    listed = [t["ticker"] for t in body["tickers"]]
    assert listed == sorted(listed)
    assert set(TICKERS) <= set(listed)
    assert (body["total"], body["next_cursor"]) == (len(listed), None)  # one page: all of them
    assert isinstance(body["lake_version"], int)
    assert {"first_date", "last_date", "forecastable", "exchange", "name"} <= set(
        body["tickers"][0]
    )


def test_pages_chain_through_the_cursor(replica_a: ApiServer) -> None:
    everything = [t["ticker"] for t in get(replica_a, limit=MAX_LIMIT).json()["tickers"]]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = get(replica_a, **params).json()
        assert len(body["tickers"]) <= 2
        assert body["total"] == len(everything)
        seen += [t["ticker"] for t in body["tickers"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == everything


def test_search_finds_tickers_then_names(replica_a: ApiServer) -> None:
    assert [t["ticker"] for t in get(replica_a, q="j").json()["tickers"]] == ["JNJ", "JPM"]
    by_name = get(replica_a, q="mobil", forecastable="true").json()
    assert [t["ticker"] for t in by_name["tickers"]] == ["XOM"]
    assert by_name["tickers"][0]["name"] == "Exxon Mobil Corp."
    nothing = get(replica_a, q="NOTHING").json()
    assert (nothing["tickers"], nothing["total"], nothing["next_cursor"]) == ([], 0, None)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"q": "x" * 41}, "q"),
        ({"q": "<script>"}, "q"),
        ({"forecastable": "maybe"}, "forecastable"),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),  # the right alphabet, not ours
        ({"limt": 20}, "limt"),  # misspelt: refused, not ignored
    ],
)
def test_bad_parameters_get_a_422_naming_the_field(
    replica_a: ApiServer, params: dict[str, Any], field: str
) -> None:
    response = get(replica_a, **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["error"], body["field"]) == ("invalid_request", field)
    assert body["message"].startswith(f"{field}: ")


def test_a_cursor_of_another_search_gets_a_422(replica_a: ApiServer) -> None:
    cursor = get(replica_a, q="J", limit=1).json()["next_cursor"]
    assert cursor is not None
    response = get(replica_a, q="K", limit=1, cursor=cursor)
    assert response.status_code == 422
    assert response.json()["field"] == "cursor"
    assert "another search" in response.json()["message"]
    assert get(replica_a, q="J", limit=1, cursor=cursor).json()["tickers"][0]["ticker"] == "JPM"


def test_the_spec_documents_the_parameters(replica_a: ApiServer) -> None:
    with replica_a.http() as http:
        spec = http.get("/docs.json").json()
    route = spec["paths"]["/v1/tickers"]["get"]
    parameters = {p["name"]: p for p in route["parameters"]}
    assert set(parameters) == {"q", "forecastable", "limit", "cursor"}
    assert not any(p.get("required") for p in parameters.values())
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, MAX_LIMIT)
    assert parameters["q"]["schema"]["maxLength"] == 40
    assert "422" in route["responses"]
    answer = spec["components"]["schemas"]["TickersAnswer"]["properties"]
    assert {"lake_version", "tickers", "total", "next_cursor"} <= set(answer)
