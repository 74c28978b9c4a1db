"""The fallback store and its snapshot."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bentos.fallback import FallbackStore, build_snapshot
from bentos.predictor import Predictor
from bentos.schemas import ForecastAnswer
from tests.champion import TICKERS


def test_snapshot_holds_every_ticker_horizon_and_locale(
    predictor: Predictor, tmp_path: Path
) -> None:
    path = tmp_path / "snap" / "fallback.json.gz"
    written = build_snapshot(predictor, path, horizons=[1, 5, 30])
    assert written == len(TICKERS) * 3 * 2
    header, *lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert json.loads(header)["format"] == 2
    assert (json.loads(header)["model_version"], json.loads(header)["answers"]) == ("7", written)
    assert len(lines) == written  # one answer per line, its key first
    ticker, horizon, locale, text = lines[0].split("\t", 3)
    assert json.loads(text)["ticker"] == ticker
    assert (json.loads(text)["horizon_days"], json.loads(text)["locale"]) == (int(horizon), locale)
    assert path.stat().st_mode & 0o777 == 0o644

    store = FallbackStore.load(path)
    assert len(store) == written
    answer = ForecastAnswer.model_validate(store.get("KO", 5, "pt-BR"))
    assert (answer.ticker, answer.horizon_days, answer.locale) == ("KO", 5, "pt-BR")
    assert len(answer.path) == 5
    assert "recomendação" in answer.narrative
    assert answer.provenance.narrator == "template"
    assert "investment advice" in store.get("KO", 5, "en")["narrative"]  # type: ignore[index]
    assert store.get("KO", 7, "en") is None  # horizon not in this snapshot
    assert store.get("NOPE", 5, "en") is None


def test_default_snapshot_covers_all_horizons(predictor: Predictor, tmp_path: Path) -> None:
    path = tmp_path / "fallback.json.gz"
    assert build_snapshot(predictor, path, locales=["en"]) == len(TICKERS) * 30


def test_the_last_fresh_answer_wins_over_the_snapshot(predictor: Predictor, tmp_path: Path) -> None:
    path = tmp_path / "fallback.json.gz"
    build_snapshot(predictor, path, horizons=[5])
    store = FallbackStore.load(path)
    newer = {**store.get("KO", 5, "en"), "narrative": "newer"}  # type: ignore[dict-item]
    store.remember(newer)
    assert store.get("KO", 5, "en")["narrative"] == "newer"  # type: ignore[index]
    assert store.get("KO", 5, "pt-BR")["narrative"] != "newer"  # type: ignore[index]
    assert len(store) == len(TICKERS) * 2  # same keys: the count does not grow


def test_a_format_1_snapshot_is_still_read(predictor: Predictor, tmp_path: Path) -> None:
    path = tmp_path / "fallback.json.gz"
    build_snapshot(predictor, path, horizons=[5])
    answers = [FallbackStore.load(path).get(t, 5, "en") for t in TICKERS]
    document = {"format": 1, "model_version": "7", "answers": answers}
    old = tmp_path / "old.json.gz"
    old.write_bytes(gzip.compress(json.dumps(document).encode()))
    store = FallbackStore.load(old)
    assert len(store) == len(TICKERS)
    assert store.get("KO", 5, "en") == answers[TICKERS.index("KO")]


TRUNCATED = gzip.compress(b'{"format": 2, "answers": 2}\nKO\t5\ten\t{"ticker": "KO"}\n')


@pytest.mark.parametrize(
    "content",
    [
        None,
        b"not gzip",
        gzip.compress(b"{]"),
        gzip.compress(b'{"format": 99, "answers": []}'),
        TRUNCATED,
        gzip.compress(b'{"format": 2, "answers": 1}\nKO 5 en {}\n'),
        gzip.compress(b"[2]\n"),
    ],
    ids=[
        "missing",
        "not-gzip",
        "bad-json",
        "other-format",
        "truncated",
        "bad-line",
        "not-a-header",
    ],
)
def test_an_unreadable_snapshot_starts_empty(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "fallback.json.gz"
    if content is not None:
        path.write_bytes(content)
    store = FallbackStore.load(path)
    assert len(store) == 0
    assert store.get("KO", 5, "en") is None


def test_an_unreadable_answer_is_no_answer(tmp_path: Path) -> None:
    path = tmp_path / "fallback.json.gz"
    path.write_bytes(gzip.compress(b'{"format": 2, "answers": 2}\nKO\t5\ten\t{]\nKO\t1\ten\t[]\n'))
    store = FallbackStore.load(path)
    assert len(store) == 2  # the load reads keys, not answers
    assert store.get("KO", 5, "en") is None
    assert store.get("KO", 1, "en") is None
