"""API keys: settings hold only SHA-256 hashes; each key gets its own request rate.

A leaked settings file or environment then reveals no usable key. Keys are long random tokens,
so an unsalted fast hash is enough (there is nothing to brute-force, unlike passwords).

The rate is taken from an injected limiter keyed by the key's hash: with Redis, a
``bentos.shared_limits.SharedRateLimiter`` holds one budget per key for every replica; without,
an in-process ``KeyedRateLimiter`` holds this replica's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bentos.ratelimit import KeyedLimiter, KeyedRateLimiter

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX = "fs_"


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest of ``key``, as stored in the settings."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_api_key(prefix: str = KEY_PREFIX) -> tuple[str, str]:
    """A new random API key and its hash.

    Returns:
        ``(key, sha256_hex)``: give the key to the client once; put only the hash in settings.
    """
    key = prefix + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key sent as ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``, or None.

    Args:
        headers: Request headers with lower-case names (or a case-insensitive mapping).
    """
    key = headers.get("x-api-key")
    if not key:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        key = token if scheme.lower() == "bearer" else None
    key = (key or "").strip()
    return key or None


class AuthStatus(StrEnum):
    """Outcome of an API key check; the service maps it to 200 / 401 / 401 / 429."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class AuthResult:
    """Result of :meth:`ApiKeyAuth.check`.

    Attributes:
        status: The outcome.
        key_id: First 12 hex digits of the key's hash, safe for logs and metric labels; empty
            unless the key is valid.
        retry_after: Seconds to wait before retrying, when rate limited.
    """

    status: AuthStatus
    key_id: str = ""
    retry_after: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the request may proceed."""
        return self.status is AuthStatus.OK


class ApiKeyAuth:
    """Checks API keys against configured SHA-256 hashes and rate-limits each key.

    Args:
        hashes: SHA-256 hex digests of the valid keys (see :func:`hash_api_key`).
        per_key_rpm: Requests per minute allowed to each key, by an in-process limiter; give
            this or ``limiter``.
        burst: Requests a key may send at once (default: one minute's worth); in-process only.
        clock: Monotonic clock, injectable for tests; in-process only.
        limiter: Takes one request from a key's budget, keyed by the key's SHA-256 hex (e.g. a
            ``SharedRateLimiter`` on Redis, so the limit holds across replicas).

    Raises:
        ValueError: A hash is not 64 hex digits (names its position, not its value).
        TypeError: Neither or both of ``per_key_rpm`` and ``limiter`` are given.
    """

    def __init__(
        self,
        hashes: Iterable[str],
        per_key_rpm: float | None = None,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        limiter: KeyedLimiter | None = None,
    ) -> None:
        if (per_key_rpm is None) == (limiter is None):
            raise TypeError("ApiKeyAuth: give per_key_rpm or limiter (exactly one)")
        normalized = []
        for position, digest in enumerate(hashes):
            digest = digest.strip().lower()
            if not _SHA256_HEX.match(digest):
                raise ValueError(
                    f"api key hash #{position}: expected 64 hex digits (SHA-256), "
                    f"got {len(digest)} characters"
                )
            normalized.append(digest.encode("ascii"))
        self._hashes = tuple(normalized)
        if limiter is None:
            assert per_key_rpm is not None  # noqa: S101 - type narrowing: exactly one is given, checked above
            limiter = KeyedRateLimiter(per_key_rpm, burst, clock=clock)
        self._limiter = limiter

    def _match(self, digest: bytes) -> bool:
        # Compare against every hash without stopping at the first match, with compare_digest,
        # so the timing reveals neither which hash matched nor how many bytes did.
        found = False
        for known in self._hashes:
            found |= hmac.compare_digest(digest, known)
        return found

    def check(self, key: str | None) -> AuthResult:
        """Authenticate ``key`` and take one request from its rate budget.

        Args:
            key: The key sent by the client, or None when absent.

        Returns:
            OK, MISSING (no key), INVALID (unknown key) or RATE_LIMITED (with ``retry_after``).
        """
        if not key:
            return AuthResult(AuthStatus.MISSING)
        digest = hash_api_key(key)
        if not self._match(digest.encode("ascii")):
            return AuthResult(AuthStatus.INVALID)
        key_id = digest[:12]
        decision = self._limiter.try_acquire(digest)
        if not decision.allowed:
            return AuthResult(AuthStatus.RATE_LIMITED, key_id, decision.retry_after)
        return AuthResult(AuthStatus.OK, key_id)
