"""A bad request body is logged by its fields and error types, never by the values sent."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field, ValidationError

from bentos.log_redaction import ValidationInputFilter, redact_validation_input

SECRET = "fs_LEAKCANARYbody0123456789"


class Input(BaseModel):
    ticker: str = Field(pattern=r"^[A-Za-z0-9.\-]{1,12}$")
    horizon_days: int = 5


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger like BentoML's request logger, writing tracebacks to a string."""
    logger = logging.getLogger("tests.log_redaction")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)
    logger.filters.clear()


def log_bad_request(logger: logging.Logger, body: str) -> None:
    try:
        Input.model_validate_json(body)
    except ValidationError:
        # What bentoml._internal.server.http_app.log_exception does.
        logger.error("Exception on %s [%s]", "/v1/forecast", "POST", exc_info=True)


def test_without_the_filter_the_value_reaches_the_log(logger) -> None:
    log, out = logger
    log_bad_request(log, f'{{"ticker": "{SECRET}"}}')
    assert SECRET in out.getvalue()  # what the filter exists for


@pytest.mark.parametrize(
    ("body", "logged"),
    [
        (f'{{"ticker": "{SECRET}"}}', "ticker (string_pattern_mismatch)"),
        (f'{{"ticker": "AAPL", "horizon_days": "{SECRET}"}}', "horizon_days (int_parsing)"),
        (f"not json {SECRET}", "body (json_invalid)"),
        (f'["{SECRET}"]', "body (model_type)"),
    ],
)
def test_the_filter_keeps_fields_and_types_only(logger, body: str, logged: str) -> None:
    log, out = logger
    log.addFilter(ValidationInputFilter())
    log_bad_request(log, body)
    text = out.getvalue()
    assert SECRET not in text
    assert "Traceback" not in text
    assert text.startswith("ERROR Exception on /v1/forecast [POST] - invalid request: ")
    assert logged in text


def test_other_records_pass_unchanged(logger) -> None:
    log, out = logger
    log.addFilter(ValidationInputFilter())
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        log.error("Exception on %s", "/v1/forecast", exc_info=True)
    assert "Traceback" in out.getvalue()
    assert "RuntimeError: a bug" in out.getvalue()


def test_installed_once() -> None:
    name = "tests.log_redaction.install"
    redact_validation_input(name)
    redact_validation_input(name)
    filters = logging.getLogger(name).filters
    assert [type(f) for f in filters] == [ValidationInputFilter]
    filters.clear()
