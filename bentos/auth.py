"""API keys: settings hold only SHA-256 hashes; each key gets its own request rate.

A leaked settings file or environment then reveals no usable key. Keys are long random tokens,
so an unsalted fast hash is enough (there is nothing to brute-force, unlike passwords).

Two disjoint kinds of keys: client keys (``api_key_hashes``) for the API's routes and admin keys
(``admin_key_hashes``) for the admin routes (cache invalidation and warm-up). A key of the other
kind is recognised and refused with its own status (403, not 401): the caller is known, the
route is not theirs. An admin key is refused on client routes too, so the most powerful key is
never pasted into a page or a client script. With no key configured at all, the admin routes
answer only requests made directly on the replica's host (:func:`is_direct_local`).

The rate is taken from an injected limiter keyed by the key's hash: with Redis, a
``bentos.shared_limits.SharedRateLimiter`` holds one budget per key for every replica; without,
an in-process ``KeyedRateLimiter`` holds this replica's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bentos.ratelimit import KeyedLimiter, KeyedRateLimiter

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX = "fs_"
ADMIN_KEY_PREFIX = "fs_admin_"  # an admin key is recognisable in a log or a leak scan


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


class TwoCredentialsError(ValueError):
    """A request sent a key both as ``X-API-Key`` and as ``Authorization: Bearer``.

    RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each
    request"; §3.1 names such a request ``invalid_request`` (400). Neither key is checked, so the
    answer tells nothing of which one is valid and takes nothing from either key's budget.
    """


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key sent as ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``, or None.

    Args:
        headers: Request headers with lower-case names (or a case-insensitive mapping).

    Raises:
        TwoCredentialsError: Both carry a key, equal or not (an ``Authorization`` header of another
            scheme, such as Basic, carries no key and is ignored).
    """
    header_key = (headers.get("x-api-key") or "").strip()
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    bearer_key = token.strip() if scheme.lower() == "bearer" else ""
    if header_key and bearer_key:
        raise TwoCredentialsError("a key in both X-API-Key and Authorization: Bearer")
    return header_key or bearer_key or None


# Headers a reverse proxy adds (NGINX sets X-Forwarded-For and X-Forwarded-Proto on every
# request it passes; ingress-nginx also X-Real-IP). A request carrying any of them came through
# a proxy, whatever its TCP peer: it is not local.
FORWARDED_HEADERS = frozenset(
    {"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"}
)


def is_direct_local(peer: Sequence[object] | None, headers: Mapping[str, str]) -> bool:
    """Whether a request came straight from this host: a loopback peer and no proxy header.

    The admin routes' rule while no key is configured. The TCP peer alone is not enough: the
    local stack's NGINX runs on the same host, so everything it forwards comes from 127.0.0.1,
    and uvicorn even rewrites the peer from X-Forwarded-For. NGINX always sets
    X-Forwarded-For (``$proxy_add_x_forwarded_for`` appends; a client cannot remove it), so a
    proxied request always carries a forwarded header. A client adding one itself only gets
    refused.

    Args:
        peer: The ASGI scope's ``client`` (host, port), None when unknown (refused).
        headers: Request headers with lower-case names.
    """
    if any(name in headers for name in FORWARDED_HEADERS):
        return False
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]))
    except ValueError:  # a unix socket path or a host name: not provably local
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class KeyScope(StrEnum):
    """Which kind of key a route takes."""

    CLIENT = "client"
    ADMIN = "admin"


class AuthStatus(StrEnum):
    """Outcome of an API key check; the edge maps it to 200 / 401 / 401 / 403 / 429."""

    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    WRONG_SCOPE = "wrong_scope"  # a valid key of the other kind (client key on an admin route)
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class AuthResult:
    """Result of :meth:`ApiKeyAuth.check`.

    Attributes:
        status: The outcome.
        key_id: First 12 hex digits of the key's hash, safe for logs and metric labels; empty
            unless the key is known (OK, WRONG_SCOPE, RATE_LIMITED).
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
        hashes: SHA-256 hex digests of the valid client keys (see :func:`hash_api_key`).
        admin_hashes: SHA-256 hex digests of the admin keys (the admin routes'); admin keys
            share the limiter with client keys, each key its own budget.
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
        admin_hashes: Iterable[str] = (),
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        limiter: KeyedLimiter | None = None,
    ) -> None:
        if (per_key_rpm is None) == (limiter is None):
            raise TypeError("ApiKeyAuth: give per_key_rpm or limiter (exactly one)")
        self._hashes = {
            KeyScope.CLIENT: _normalized(hashes, "api key hash"),
            KeyScope.ADMIN: _normalized(admin_hashes, "admin key hash"),
        }
        if limiter is None:
            assert per_key_rpm is not None  # noqa: S101 - type narrowing: exactly one is given, checked above
            limiter = KeyedRateLimiter(per_key_rpm, burst, clock=clock)
        self._limiter = limiter

    @property
    def guards_clients(self) -> bool:
        """Whether client keys are configured; without, the client routes are open."""
        return bool(self._hashes[KeyScope.CLIENT])

    def _scope_of(self, digest: bytes) -> KeyScope | None:
        # Compare against every hash of both kinds without stopping at the first match, with
        # compare_digest, so the timing reveals neither which hash matched nor how many bytes did.
        found = None
        for scope, hashes in self._hashes.items():
            for known in hashes:
                if hmac.compare_digest(digest, known):
                    found = scope
        return found

    def check(self, key: str | None, scope: KeyScope = KeyScope.CLIENT) -> AuthResult:
        """Authenticate ``key`` for a route of ``scope`` and take one request from its budget.

        Args:
            key: The key sent by the client, or None when absent.
            scope: The kind of key the route takes.

        Returns:
            OK, MISSING (no key), INVALID (unknown key), WRONG_SCOPE (a key of the other kind;
            its budget is untouched: the request does no work) or RATE_LIMITED (with
            ``retry_after``).
        """
        if not key:
            return AuthResult(AuthStatus.MISSING)
        digest = hash_api_key(key)
        found = self._scope_of(digest.encode("ascii"))
        if found is None:
            return AuthResult(AuthStatus.INVALID)
        key_id = digest[:12]
        if found is not scope:
            return AuthResult(AuthStatus.WRONG_SCOPE, key_id)
        decision = self._limiter.try_acquire(digest)
        if not decision.allowed:
            return AuthResult(AuthStatus.RATE_LIMITED, key_id, decision.retry_after)
        return AuthResult(AuthStatus.OK, key_id)


def _normalized(hashes: Iterable[str], what: str) -> tuple[bytes, ...]:
    """The hashes lower-cased as ASCII bytes; a malformed one raises naming its position."""
    normalized = []
    for position, digest in enumerate(hashes):
        digest = digest.strip().lower()
        if not _SHA256_HEX.match(digest):
            raise ValueError(
                f"{what} #{position}: expected 64 hex digits (SHA-256), "
                f"got {len(digest)} characters"
            )
        normalized.append(digest.encode("ascii"))
    return tuple(normalized)
