"""A small client of Prometheus's HTTP API: instant queries and the alerts list.

Only what ``finsimples monitor status`` and the tests read: ``/api/v1/query`` (instant vectors)
and ``/api/v1/alerts``. Every failure becomes a :class:`PrometheusError` that says what went
wrong and where: nothing listening, an HTTP error, or PromQL that Prometheus refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx


class PrometheusError(RuntimeError):
    """Prometheus could not be asked, or refused the question."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value (NaN when undefined)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class ActiveAlert:
    """An alert Prometheus evaluates as pending or firing."""

    name: str
    state: str
    labels: Mapping[str, str]
    active_at: str
    value: float


class PrometheusApi:
    """Prometheus at ``base_url`` (e.g. ``http://127.0.0.1:9090``)."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> PrometheusApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus at {self.base_url} is not answering: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(
                f"Prometheus at {self.base_url}{path} answered HTTP {response.status_code} "
                "without its JSON envelope: is that URL a Prometheus server?"
            )
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused {path} (HTTP {response.status_code}): "
                f"{body.get('errorType', '?')}: {body.get('error', 'no reason given')}"
            )
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        """The instant vector of ``expr`` now (a scalar comes back as one unlabelled sample)."""
        data = self._get("/api/v1/query", {"query": expr})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [Sample(item["metric"], _number(item["value"][1])) for item in result]
        if kind == "scalar":
            return [Sample({}, _number(result[1]))]
        raise PrometheusError(f"query {expr!r} returned a {kind}, not an instant vector")

    def alerts(self) -> list[ActiveAlert]:
        """Every pending or firing alert."""
        data = self._get("/api/v1/alerts")
        return [
            ActiveAlert(
                name=item["labels"].get("alertname", "?"),
                state=item.get("state", "?"),
                labels=item["labels"],
                active_at=item.get("activeAt", ""),
                value=_number(item.get("value", "NaN")),
            )
            for item in data.get("alerts", [])
        ]


def _number(text: str) -> float:
    """A sample value as Prometheus writes it ("NaN", "+Inf", "0.25")."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
