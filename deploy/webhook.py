"""MLflow registry webhooks, the deploy controller's fast trigger.

MLflow (3.x, experimental) posts ``model_version_alias.created`` to a URL when an alias moves,
from the ``mlflow server`` process, for a registry with a SQL backend. Delivery is a thread pool
with no durable outbox: a post lost while the controller restarts is never sent again, so the
webhook only *wakes* the controller early; its poll is what makes the state right.

A delivery is signed: ``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of
"{delivery_id}.{timestamp}.{body}">`` with ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``.
A request whose signature does not verify, or whose timestamp is older than the tolerance
(a replayed delivery), is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Final, Literal

from mlflow import MlflowClient

SIGNATURE_HEADER = "X-MLflow-Signature"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
ALIAS_EVENT: Final[Literal["model_version_alias.created"]] = "model_version_alias.created"
WEBHOOK_NAME = "finsimples-deploy-controller"
TOLERANCE_SECONDS = 300  # as Stripe's and Svix's webhooks: older deliveries are replays


class WebhookRejectedError(ValueError):
    """A delivery that must not be acted on; the message says why (never the secret)."""


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """The ``X-MLflow-Signature`` MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> dict[str, object]:
    """The delivery's JSON payload, once its signature and age are checked.

    Args:
        secret: The webhook's secret.
        headers: The request headers (any case).
        body: The raw request body, exactly as received.
        now: The current UNIX time (an input, so tests drive the clock).

    Raises:
        WebhookRejectedError: a header is missing, the timestamp is not a number or too old or
            too new, the signature does not match, or the body is not a JSON object.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    values = {}
    for name in (SIGNATURE_HEADER, DELIVERY_HEADER, TIMESTAMP_HEADER):
        value = lower.get(name.lower())
        if not value:
            raise WebhookRejectedError(f"missing header {name}")
        values[name] = value
    try:
        stamp = int(values[TIMESTAMP_HEADER])
    except ValueError as exc:
        raise WebhookRejectedError(f"{TIMESTAMP_HEADER} is not a UNIX time") from exc
    if abs(now - stamp) > TOLERANCE_SECONDS:
        raise WebhookRejectedError(
            f"{TIMESTAMP_HEADER} is {now - stamp:.0f} s from now (tolerance "
            f"{TOLERANCE_SECONDS} s): a replayed or delayed delivery"
        )
    text = body.decode("utf-8", errors="replace")
    expected = sign(secret, values[DELIVERY_HEADER], values[TIMESTAMP_HEADER], text)
    if not hmac.compare_digest(expected, values[SIGNATURE_HEADER]):
        raise WebhookRejectedError(f"{SIGNATURE_HEADER} does not match the body")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise WebhookRejectedError("the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookRejectedError("the body is not a JSON object")
    return payload


def new_secret() -> str:
    """A fresh webhook secret (the controller makes one at every start)."""
    return secrets.token_urlsafe(32)


def register(client: MlflowClient, url: str, secret: str) -> str:
    """Point the registry's controller webhook at ``url`` with ``secret``; its id.

    Any earlier webhook of the controller's (another URL, an old secret) is replaced, so a
    restarted controller never leaves a stale one behind.
    """
    for hook in client.list_webhooks():
        if hook.name == WEBHOOK_NAME:
            client.delete_webhook(hook.webhook_id)
    hook = client.create_webhook(
        name=WEBHOOK_NAME,
        url=url,
        events=[ALIAS_EVENT],
        description="wakes the FinSimples deploy controller when an alias moves",
        secret=secret,
    )
    return str(hook.webhook_id)


def fernet_key() -> str:
    """A key for ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (Fernet: 32 url-safe base64 bytes).

    MLflow encrypts webhook secrets with it; without one each server worker makes its own and
    every delivery fails with ``InvalidToken`` (MLflow issue 19896).
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
