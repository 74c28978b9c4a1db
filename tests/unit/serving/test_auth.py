"""API keys: hashing, checks, per-key rate limits, header parsing."""

from __future__ import annotations

import pytest

from bentos.auth import (
    ApiKeyAuth,
    AuthResult,
    AuthStatus,
    TwoCredentialsError,
    api_key_from_headers,
    generate_api_key,
    hash_api_key,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_hash_is_sha256_hex() -> None:
    assert hash_api_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_generated_key_matches_its_hash_and_is_random() -> None:
    key, digest = generate_api_key()
    assert key.startswith("fs_")
    assert len(key) > 40
    assert hash_api_key(key) == digest
    assert generate_api_key()[0] != key


def test_check_outcomes() -> None:
    key, digest = generate_api_key()
    other_key, other_digest = generate_api_key()
    auth = ApiKeyAuth([other_digest, digest.upper()], per_key_rpm=60)
    result = auth.check(key)
    assert result == AuthResult(AuthStatus.OK, digest[:12])
    assert result.ok
    assert auth.check(None).status is AuthStatus.MISSING
    assert auth.check("").status is AuthStatus.MISSING
    assert auth.check(key + "x").status is AuthStatus.INVALID
    assert auth.check(digest).status is AuthStatus.INVALID  # the hash itself is not a key
    assert auth.check(other_key).ok


def test_each_key_is_rate_limited_on_its_own() -> None:
    clock = FakeClock()
    (key, digest), (other, other_digest) = generate_api_key(), generate_api_key()
    auth = ApiKeyAuth([digest, other_digest], per_key_rpm=60, burst=2, clock=clock)
    assert [auth.check(key).ok for _ in range(2)] == [True, True]
    limited = auth.check(key)
    assert limited.status is AuthStatus.RATE_LIMITED
    assert limited.retry_after == pytest.approx(1.0)
    assert not limited.ok
    assert auth.check(other).ok
    clock.now += 1.0
    assert auth.check(key).ok


def test_no_configured_hashes_accepts_nobody() -> None:
    assert ApiKeyAuth([], per_key_rpm=60).check("anything").status is AuthStatus.INVALID


def test_a_malformed_hash_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="#1: expected 64 hex digits") as error:
        ApiKeyAuth([hash_api_key("a"), "fs_plaintext-key"], per_key_rpm=60)
    assert "plaintext" not in str(error.value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-api-key": "k1"}, "k1"),
        ({"authorization": "Bearer k2"}, "k2"),
        ({"authorization": "bearer  k3 "}, "k3"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"x-api-key": "k4", "authorization": "Basic dXNlcjpwYXNz"}, "k4"),  # Basic: no key
        ({"x-api-key": "  ", "authorization": "Bearer k5"}, "k5"),  # a blank header: no key
        ({"x-api-key": "k6", "authorization": "Bearer "}, "k6"),
        ({"x-api-key": "  "}, None),
        ({}, None),
    ],
)
def test_api_key_from_headers(headers: dict[str, str], expected: str | None) -> None:
    assert api_key_from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "k1", "authorization": "Bearer k2"},
        {"x-api-key": "k1", "authorization": "bearer k1"},  # equal keys: still two methods
    ],
)
def test_a_key_sent_both_ways_is_two_credentials(headers: dict[str, str]) -> None:
    with pytest.raises(TwoCredentialsError, match="both X-API-Key and Authorization: Bearer"):
        api_key_from_headers(headers)
