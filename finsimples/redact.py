"""Credentials out of what is shown: a URL's password masked before it is printed or logged.

``redis_url`` and ``mlflow_tracking_uri`` may carry a password (``redis://:pw@host:6379/0``,
``https://user:pw@mlflow.example``, ``postgresql://user:pw@db/mlflow``). The processes use
them whole; every message, status line or log shows them through :func:`mask_url`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (the rest unchanged).

    >>> mask_url("redis://:hunter2@cache:6379/0")
    'redis://:***@cache:6379/0'
    >>> mask_url("sqlite:///state/mlflow.db")
    'sqlite:///state/mlflow.db'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not a URL we can take apart: show none of it
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{MASK}@{host}"))


def mask_secrets(text: str, *urls: str) -> str:
    """``text`` with the password of each of ``urls`` masked wherever it appears (an error
    message may quote the URL it failed on, credentials included)."""
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            text = text.replace(password, MASK)
    return text
