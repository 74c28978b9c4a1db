"""The read-only fallback store: the last good answer per (ticker, horizon, locale).

When a fresh answer is not ready within the latency budget, the service answers from here,
marked ``stale: true, source: "fallback"``. Two layers, newest first:

1. the last fresh answer this process served for the key (kept in memory);
2. a snapshot built next to the model when the bento is built (:func:`build_snapshot`, packaged
   by ``bentofile.yaml``), so even a replica that just started has an answer for every ticker,
   horizon and locale.

The store never computes anything: reading it cannot be slow. It holds each snapshot answer as
its JSON compressed (about a fifth of the text, a small fraction of the parsed dict: a 2,000-ticker
snapshot is 120,000 answers) and parses one only when it is served.

The snapshot file (format 2) is gzipped text: a header line (JSON: format, built_at,
model_version, lake_version, answers), then one line per answer, ``ticker<TAB>horizon<TAB>locale
<TAB>{answer JSON}``, so it is written and read a line at a time. Format 1 (one JSON document
with an ``answers`` list) is still read.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import tempfile
import threading
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bentos.answers import facts_for, fresh_answer, utc_now
from bentos.narrative import LOCALES, TemplateNarrator
from bentos.predictor import Predictor

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 2
_UNREADABLE = (OSError, EOFError, zlib.error, ValueError, LookupError, TypeError, AttributeError)
"""What reading a damaged snapshot can raise: the store then starts empty."""
DEFAULT_SNAPSHOT = Path(__file__).resolve().parent / "snapshot" / "fallback.json.gz"
"""Where ``build_snapshot`` writes by default and the service looks: inside the package, so
``bentoml build`` packages it with the code."""

Key = tuple[str, int, str]


class FallbackStore:
    """Last good answers as the JSON dicts of ``ForecastAnswer``: the snapshot's kept packed
    (compressed JSON, parsed when served), the ones served since as dicts.

    Args:
        snapshot: Answers from a snapshot, read-only.
    """

    def __init__(self, snapshot: Mapping[Key, dict[str, Any]] | None = None) -> None:
        self._snapshot: dict[Key, bytes] = {
            key: _pack(json.dumps(answer).encode()) for key, answer in (snapshot or {}).items()
        }
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
        store = cls()
        try:
            store._snapshot = _read_snapshot(path)
        except (
            OSError,
            EOFError,
            zlib.error,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            log.error("fallback snapshot %s unreadable (%s): starting empty", path, exc)
            return cls()
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
        if answer is not None:
            return answer
        packed = self._snapshot.get(key)
        if packed is None:
            return None
        try:
            answer = json.loads(zlib.decompress(packed))
        except ValueError as exc:  # a line the load could not check: never fail the request
            log.error("fallback snapshot answer for %s unreadable (%s)", key, exc)
            return None
        return answer if isinstance(answer, dict) else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._snapshot.keys() | self._recent.keys())


def _pack(text: bytes) -> bytes:
    return zlib.compress(text, 1)  # level 1: the load compresses every answer once


def _read_snapshot(path: Path) -> dict[Key, bytes]:
    """Every answer of the snapshot at ``path``, packed, by key; format 1 or 2."""
    with gzip.open(path, "rb") as lines:
        header = json.loads(lines.readline())
        if header.get("format") == 1:  # one document: the whole file was that first line
            return {key_of(a): _pack(json.dumps(a).encode()) for a in header["answers"]}
        if header.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"format {header.get('format')!r}, expected {SNAPSHOT_FORMAT}")
        answers: dict[Key, bytes] = {}
        for line in lines:
            ticker, horizon, locale, text = line.rstrip(b"\n").split(b"\t", 3)
            answers[(ticker.decode(), int(horizon), locale.decode())] = _pack(text)
    if len(answers) != header["answers"]:
        raise ValueError(f"{len(answers)} answers, the header says {header['answers']}")
    return answers


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
    locales = list(locales)
    generated_at = utc_now()
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    body = Path(tempfile.mkstemp(dir=path.parent, suffix=".tmp")[1])
    try:
        with gzip.open(body, "wb", compresslevel=6) as out:
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
                        text = json.dumps(answer.model_dump(mode="json"))
                        out.write(f"{window.ticker}\t{horizon}\t{locale}\t{text}\n".encode())
                        written += 1
        header = {
            "format": SNAPSHOT_FORMAT,
            "built_at": generated_at.isoformat(),
            "model_version": predictor.info.version,
            "lake_version": predictor.lake_version,
            "answers": written,
        }
        # The header first, as a gzip member of its own; the body's member follows (gzip
        # readers go through the members in turn, as one stream).
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            tmp.write(gzip.compress(json.dumps(header).encode() + b"\n"))
            with body.open("rb") as member:
                shutil.copyfileobj(member, tmp)
        os.chmod(tmp.name, 0o644)  # temporary files are 0600; the image's user must read it
        os.replace(tmp.name, path)
    finally:
        body.unlink(missing_ok=True)
    return written
