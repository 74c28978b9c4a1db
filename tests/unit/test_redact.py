"""Passwords in URLs are masked wherever a URL is shown."""

from __future__ import annotations

import pytest

from finsimples.redact import mask_secrets, mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://default:hunter2@cache.example:6380", "rediss://default:***@cache.example:6380"),
        ("https://ops:p%40ss@mlflow.example/x?y=1", "https://ops:***@mlflow.example/x?y=1"),
        ("postgresql://u:pw@db:5432/mlflow", "postgresql://u:***@db:5432/mlflow"),
        ("http://127.0.0.1:5050", "http://127.0.0.1:5050"),
        ("https://token@mlflow.example", "https://token@mlflow.example"),  # no password part
        ("sqlite:///state/mlflow.db", "sqlite:///state/mlflow.db"),
    ],
)
def test_only_the_password_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_url_that_cannot_be_parsed_is_not_shown() -> None:
    assert mask_url("http://[::1") == "***"


def test_a_message_quoting_the_url_loses_its_password() -> None:
    url = "https://ops:s3cr3t-pw@mlflow.example"
    message = f"API request to {url}/api/2.0/x failed (password s3cr3t-pw)"
    assert mask_secrets(message, url, "sqlite:///x.db") == (
        "API request to https://ops:***@mlflow.example/api/2.0/x failed (password ***)"
    )
