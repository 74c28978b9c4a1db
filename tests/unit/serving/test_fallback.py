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
    document = json.loads(gzip.decompress(path.read_bytes()))
    assert (document["format"], document["model_version"]) == (1, "7")
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


@pytest.mark.parametrize(
    "content",
    [None, b"not gzip", gzip.compress(b"{]"), gzip.compress(b'{"format": 99, "answers": []}')],
    ids=["missing", "not-gzip", "bad-json", "other-format"],
)
def test_an_unreadable_snapshot_starts_empty(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "fallback.json.gz"
    if content is not None:
        path.write_bytes(content)
    store = FallbackStore.load(path)
    assert len(store) == 0
    assert store.get("KO", 5, "en") is None
