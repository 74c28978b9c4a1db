"""The read-only fallback store: the last good answer per (ticker, horizon, locale).

When a fresh answer is not ready within the latency budget, the service answers from here,
marked ``stale: true, source: "fallback"``. Two layers, newest first:

1. the last fresh answer this process served for the key (kept in memory);
2. a snapshot built next to the model when the bento is built (:func:`build_snapshot`, packaged
   by ``bentofile.yaml``), so even a replica that just started has an answer for every ticker,
   horizon and locale.

The store never computes anything: reading it cannot be slow.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bentos.answers import facts_for, fresh_answer, utc_now
from bentos.narrative import LOCALES, TemplateNarrator
from bentos.predictor import Predictor

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
DEFAULT_SNAPSHOT = Path(__file__).resolve().parent / "snapshot" / "fallback.json.gz"
"""Where ``build_snapshot`` writes by default and the service looks: inside the package, so
``bentoml build`` packages it with the code."""

Key = tuple[str, int, str]


class FallbackStore:
    """Last good answers, stored as the JSON dicts of ``ForecastAnswer``.

    Args:
        snapshot: Answers from a snapshot, read-only.
    """

    def __init__(self, snapshot: Mapping[Key, dict[str, Any]] | None = None) -> None:
        self._snapshot = dict(snapshot or {})
        self._recent: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None) -> FallbackStore:
        """A store holding the snapshot at ``path``.

        A missing or unreadable snapshot gives an empty store (logged), never an error: the
        service must start, and fresh answers fill the store as they are served.
        """
        if path is None or not path.exists():
            log.warning("no fallback snapshot at %s: fallback answers start empty", path)
            return cls()
        try:
            document = json.loads(gzip.decompress(path.read_bytes()))
            if document.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"format {document.get('format')!r}, expected {SNAPSHOT_FORMAT}")
            answers = document["answers"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("fallback snapshot %s unreadable (%s): starting empty", path, exc)
            return cls()
        store = cls({key_of(answer): answer for answer in answers})
        log.info("fallback snapshot %s: %d answers", path, len(store._snapshot))
        return store

    def remember(self, answer: Mapping[str, Any]) -> None:
        """Keep ``answer`` (a fresh answer's JSON dict) as the last good one for its key."""
        with self._lock:
            self._recent[key_of(answer)] = dict(answer)

    def get(self, ticker: str, horizon: int, locale: str) -> dict[str, Any] | None:
        """The last good answer for the key, or None."""
        key = (ticker, horizon, locale)
        with self._lock:
            answer = self._recent.get(key)
        return answer if answer is not None else self._snapshot.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._snapshot.keys() | self._recent.keys())


def key_of(answer: Mapping[str, Any]) -> Key:
    """The (ticker, horizon, locale) key of a stored answer."""
    return (str(answer["ticker"]), int(answer["horizon_days"]), str(answer["locale"]))


def build_snapshot(
    predictor: Predictor,
    path: Path = DEFAULT_SNAPSHOT,
    *,
    horizons: Iterable[int] | None = None,
    locales: Iterable[str] = LOCALES,
) -> int:
    """Write every forecastable ticker's answers, with template narratives, to ``path``.

    Args:
        predictor: The predictor of the model the bento will serve.
        path: Gzipped JSON file to write (atomically: a temporary file renamed).
        horizons: Horizons to include; default every horizon of the model (1..max).
        locales: Narrative locales to include.

    Returns:
        The number of answers written.
    """
    template = TemplateNarrator()
    horizons = list(horizons or range(1, predictor.max_horizon + 1))
    generated_at = utc_now()
    answers = []
    for window in predictor.tickers():
        if not window.forecastable:
            continue
        for horizon in horizons:
            forecast = predictor.forecast(window.ticker, horizon)
            for locale in locales:
                narrative = template.narrate(facts_for(predictor, forecast, locale))
                answer = fresh_answer(
                    predictor, forecast, narrative, locale, generated_at=generated_at
                )
                answers.append(answer.model_dump(mode="json"))
    document = {
        "format": SNAPSHOT_FORMAT,
        "built_at": generated_at.isoformat(),
        "model_version": predictor.info.version,
        "lake_version": predictor.lake_version,
        "answers": answers,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        tmp.write(gzip.compress(json.dumps(document).encode("utf-8"), compresslevel=6))
    os.chmod(tmp.name, 0o644)  # temporary files are 0600; the image's user must read it
    os.replace(tmp.name, path)
    return len(answers)
