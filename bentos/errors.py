"""Which HTTP answer each expected failure of a forecast gets.

Input problems are the client's (404, 422), a ticker whose prices stop too long before the
lake's is a 409 (the request is valid, the lake's state refuses it: see
``finsimples.freshness``), as is one whose recent prices jump like a split no event explains
(``finsimples.adjustment``) and an exhausted budget with nothing to fall back on
is a 503 with Retry-After; anything else is a bug and left to BentoML's 500.
"""

from __future__ import annotations

from dataclasses import dataclass

from bentos.engine import AnswerUnavailableError
from bentos.predictor import (
    HorizonError,
    NotForecastableError,
    UnexplainedJumpError,
    UnknownTickerError,
)
from bentos.schemas import ApiErrorBody, StaleTickerBody, UnexplainedJumpBody
from finsimples.freshness import StaleTickerError


@dataclass(frozen=True)
class ApiError:
    """An error answer: status, body and extra headers."""

    status: int
    body: ApiErrorBody
    headers: dict[str, str]


def api_error(exc: Exception) -> ApiError | None:
    """The answer for an expected failure, or None for a bug (let it be a 500)."""
    if isinstance(exc, UnknownTickerError):
        body = ApiErrorBody(
            error="unknown_ticker", message=str(exc), field="ticker", suggestions=exc.suggestions
        )
        return ApiError(404, body, {})
    if isinstance(exc, StaleTickerError):
        lag = exc.lag
        body = StaleTickerBody(
            error="stale_ticker",
            message=str(exc),
            field="ticker",
            last_date=lag.last_date,
            lake_as_of=lag.lake_as_of,
            sessions_behind=lag.sessions,
            days_behind=lag.days,
            stale_after_sessions=exc.stale_after_sessions,
        )
        return ApiError(409, body, {})
    if isinstance(exc, UnexplainedJumpError):
        jump = exc.jump
        body = UnexplainedJumpBody(
            error="unexplained_jump",
            message=str(exc),
            field="ticker",
            jump_date=jump.date.date(),
            ratio=round(jump.ratio, 6),
            likely=jump.likely,
        )
        return ApiError(409, body, {})
    if isinstance(exc, NotForecastableError):
        return ApiError(
            404, ApiErrorBody(error="insufficient_history", message=str(exc), field="ticker"), {}
        )
    if isinstance(exc, HorizonError):
        return ApiError(
            422, ApiErrorBody(error="invalid_request", message=str(exc), field="horizon_days"), {}
        )
    if isinstance(exc, AnswerUnavailableError):
        wait = max(1, round(exc.retry_after))
        body = ApiErrorBody(error="unavailable", message=str(exc), retry_after=wait)
        return ApiError(503, body, {"retry-after": str(wait)})
    return None


def invalid_field(field: str, message: str) -> ApiError:
    """A 422 naming ``field`` (checks the schema cannot express, e.g. configured limits)."""
    return ApiError(
        422, ApiErrorBody(error="invalid_request", message=f"{field}: {message}", field=field), {}
    )


def injected_fault(status: int) -> ApiError:
    """The answer of a replica told by the fault plan to fail (drills and tests only)."""
    body = ApiErrorBody(error="injected_fault", message=f"fault injection: answering {status}")
    return ApiError(status, body, {})
