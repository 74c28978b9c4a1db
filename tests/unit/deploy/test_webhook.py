"""MLflow webhook deliveries: MLflow's signature checked; forgeries and replays refused."""

from __future__ import annotations

import json

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from deploy.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejectedError,
    sign,
    verify,
)

SECRET = "s3cret-for-tests"
NOW = 1_790_000_000
BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-12-07T12:00:00+00:00",
        "data": {"name": "finsimples-forecaster", "alias": "champion", "version": "3"},
    }
)


def headers(body: str = BODY, stamp: int = NOW, secret: str = SECRET) -> dict[str, str]:
    delivery = "0b7e6f1c-delivery"
    return {
        SIGNATURE_HEADER: sign(secret, delivery, str(stamp), body),
        DELIVERY_HEADER: delivery,
        TIMESTAMP_HEADER: str(stamp),
    }


def test_our_signature_is_mlflows() -> None:
    # The oracle: the function mlflow server signs its deliveries with.
    assert sign(SECRET, "id-1", "123", BODY) == _generate_hmac_signature(
        SECRET, "id-1", "123", BODY
    )


def test_a_signed_delivery_is_accepted_whatever_the_header_case() -> None:
    lower = {k.lower(): v for k, v in headers().items()}
    payload = verify(SECRET, lower, BODY.encode(), NOW + 5)
    assert payload["data"] == {"name": "finsimples-forecaster", "alias": "champion", "version": "3"}


@pytest.mark.parametrize(
    ("given", "body", "now", "reason"),
    [
        (headers(secret="another-secret"), BODY, NOW, "does not match the body"),
        (headers(), BODY.replace('"3"', '"4"'), NOW, "does not match the body"),
        (headers(), BODY, NOW + 301, "a replayed or delayed delivery"),
        (headers(), BODY, NOW - 301, "a replayed or delayed delivery"),
        ({**headers(), TIMESTAMP_HEADER: "yesterday"}, BODY, NOW, "is not a UNIX time"),
        (headers(body="[1, 2]"), "[1, 2]", NOW, "not a JSON object"),
        (headers(body="{oops"), "{oops", NOW, "not JSON"),
    ],
)
def test_forged_tampered_or_replayed_deliveries_are_refused(
    given: dict[str, str], body: str, now: int, reason: str
) -> None:
    with pytest.raises(WebhookRejectedError, match=reason):
        verify(SECRET, given, body.encode(), now)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, DELIVERY_HEADER, TIMESTAMP_HEADER])
def test_a_missing_header_is_named(missing: str) -> None:
    given = {k: v for k, v in headers().items() if k != missing}
    with pytest.raises(WebhookRejectedError, match=f"missing header {missing}"):
        verify(SECRET, given, BODY.encode(), NOW)


def test_the_error_never_shows_the_secret() -> None:
    with pytest.raises(WebhookRejectedError) as caught:
        verify(SECRET, headers(secret="x"), BODY.encode(), NOW)
    assert SECRET not in str(caught.value)
