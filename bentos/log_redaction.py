"""What a replica logs about a bad request body: the fields at fault, never the values sent.

BentoML logs a request that fails validation as an ERROR with pydantic's traceback, whose text
quotes each bad value (``input_value='...'``, or the whole raw body when it is not JSON). A
client that put its API key, or anything else private, in the wrong field would find it in the
server's logs, and so would everyone who reads them. :class:`ValidationInputFilter` rewrites
those records into one line naming each failing field and pydantic's error type (what the 422
answer tells the client too); other records pass unchanged.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
"""The logger of BentoML's ``log_exception``, which logs a failed request with its traceback."""
MAX_FIELD_CHARS = 32
"""Longer field names are not ours (a client's JSON key): they are not logged either."""


def _field(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in location]
    if any(len(part) > MAX_FIELD_CHARS for part in parts):
        return "<unknown field>"
    return ".".join(parts) or "body"


class ValidationInputFilter(logging.Filter):
    """Strips the input values from records carrying a pydantic ``ValidationError``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place when it carries a validation error; always keep it."""
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, ValidationError):
            return True
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        fields = ", ".join(f"{_field(error['loc'])} ({error['type']})" for error in errors)
        # Formatted now, without args left: a '%' in a field name is then not a placeholder.
        record.msg = f"{record.getMessage()} - invalid request: {fields}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


def redact_validation_input(logger_name: str = BENTOML_REQUEST_LOGGER) -> None:
    """Install :class:`ValidationInputFilter` on ``logger_name`` (once; idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, ValidationInputFilter) for f in logger.filters):
        logger.addFilter(ValidationInputFilter())
