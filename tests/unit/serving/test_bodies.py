"""Request bodies at the edge: JSON only (415), bounded (413), replayed intact to the app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bentos.bodies import media_type_problem
from bentos.edge import EdgeMiddleware, EdgePolicy

LIMIT = 2048


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"got": (await request.body()).decode()})


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(routes=[Route("/v1/forecast", echo, methods=["POST"])])
    policy = EdgePolicy(None, "r1", frozenset({"/v1/forecast"}), max_body_bytes=LIMIT)
    with TestClient(EdgeMiddleware(app, policy=lambda: policy)) as client:
        yield client


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        'application/json;charset="UTF8"',
    ],
)
def test_json_is_accepted(content_type: str) -> None:
    assert media_type_problem([content_type], has_body=True) is None


@pytest.mark.parametrize(
    ("content_types", "has_body", "problem"),
    [
        (["text/plain"], True, "unsupported Content-Type 'text/plain'"),
        (["application/jso"], False, "unsupported Content-Type 'application/jso'"),
        (["application/json; charset=nope"], True, "parameter 'charset=nope'"),
        (["application/json; boundary=x"], True, "parameter 'boundary=x'"),
        (["application/json", "text/plain"], True, "more than one"),
        ([], True, "missing Content-Type"),
    ],
)
def test_anything_else_is_named(content_types: list[str], has_body: bool, problem: str) -> None:
    found = media_type_problem(content_types, has_body=has_body)
    assert found is not None
    assert problem in found


def test_no_body_needs_no_content_type() -> None:
    assert media_type_problem([], has_body=False) is None


def test_the_app_reads_the_body_the_edge_read(client: TestClient) -> None:
    body = '{"ticker": "KO", "pad": "' + "x" * (LIMIT - 40) + '"}'
    response = client.post(
        "/v1/forecast", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"got": body}


def test_refusals_are_in_the_error_envelope(client: TestClient) -> None:
    text = client.post("/v1/forecast", content=b"{}", headers={"content-type": "text/plain"})
    assert text.status_code == 415
    assert text.json()["error"] == "unsupported_media_type"
    assert text.json()["field"] == "Content-Type"
    assert text.headers["x-finsimples-replica"] == "r1"
    big = b'{"pad": "' + b"x" * LIMIT + b'"}'
    declared = client.post(
        "/v1/forecast", content=big, headers={"content-type": "application/json"}
    )
    chunked = client.post(
        "/v1/forecast",
        content=iter([big[:100], big[100:]]),
        headers={"content-type": "application/json"},
    )
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
