"""Turn a predictor's forecast into the API's answers: narrative facts, provenance, model card.

Shared by the live engine, the deploy hook's cache warm-up and the fallback snapshot, so an
answer looks the same whichever of them wrote it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bentos.narrative import ForecastFacts, Narrative
from bentos.predictor import ModelInfo, Predictor
from bentos.schemas import (
    CoverageRecord,
    ForecastAnswer,
    ModelCard,
    Provenance,
    RealizedRecord,
    Source,
    Timings,
)
from finsimples.forecast import Forecast
from finsimples.records import TrackRecordSummary

_METRIC = re.compile(r"^h(\d+)_(.+)$")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def facts_for(predictor: Predictor, forecast: Forecast, locale: str) -> ForecastFacts:
    """The numbers a narrative of ``forecast`` may quote, at its horizon's last path point."""
    last = forecast.path[-1]
    low_key, high_key = predictor.interval_keys
    record = predictor.track_record
    return ForecastFacts(
        ticker=forecast.ticker,
        horizon_days=forecast.horizon_days,
        as_of=forecast.as_of,
        last_price=forecast.last_price,
        median_price=last.prices["q0.5"],
        low_price=last.prices[low_key],
        high_price=last.prices[high_key],
        interval_level=forecast.interval,
        prob_gain=last.prob_gain,
        annual_volatility=predictor.annual_volatility(forecast.ticker),
        model_version=predictor.info.version,
        recent_coverage=predictor.recent_coverage(forecast.horizon_days),
        coverage_window_days=record.window_days if record is not None else None,
        locale=locale,
        currency=forecast.currency,
    )


def provenance(
    info: ModelInfo, lake_version: int, narrator: str, generated_at: datetime, median: str
) -> Provenance:
    """The provenance of a freshly computed answer."""
    return Provenance(
        model_name=info.model_name,
        model_version=info.version,
        alias=info.alias,
        run_id=info.run_id,
        data_watermark=info.watermark,
        feature_version=info.feature_version,
        lake_version=lake_version,
        source="fresh",
        stale=False,
        generated_at=generated_at,
        narrator=narrator,
        median=median,
    )


def fresh_answer(
    predictor: Predictor,
    forecast: Forecast,
    narrative: Narrative,
    locale: str,
    timings: Timings | None = None,
    generated_at: datetime | None = None,
) -> ForecastAnswer:
    """The answer for a forecast computed now."""
    return ForecastAnswer(
        ticker=forecast.ticker,
        as_of=forecast.as_of,
        last_price=forecast.last_price,
        horizon_days=forecast.horizon_days,
        locale=locale,
        interval=forecast.interval,
        path=forecast.path,
        narrative=narrative.text,
        provenance=provenance(
            predictor.info,
            predictor.lake_version,
            narrative.narrator,
            generated_at or utc_now(),
            predictor.median_policy,
        ),
        timings=timings or Timings(total_ms=0.0),
        currency=forecast.currency,
        exchange=forecast.exchange,
    )


def stored_answer(stored: dict[str, Any], source: Source, timings: Timings) -> ForecastAnswer:
    """A cached or fallback answer (as stored by ``model_dump(mode="json")``), relabelled.

    Fallback answers are marked ``stale``; ``cached_at`` is when the answer was stored, which
    is when it was computed.
    """
    answer = ForecastAnswer.model_validate(stored)
    generated = answer.provenance.generated_at
    marked = answer.provenance.model_copy(
        update={"source": source, "stale": source == "fallback", "cached_at": generated}
    )
    return answer.model_copy(update={"provenance": marked, "timings": timings})


def coverage_records(info: ModelInfo, nominal: float) -> list[CoverageRecord]:
    """The coverage track record per evaluated horizon, from the run's metric names.

    Metric names follow ``registry.metrics``: ``h5_coverage``, ``h5_coverage_worst_year``,
    ``h5_width``, ``h5_pinball_gain``, ``h5_coverage_ewma_normal``.
    """
    by_horizon: dict[int, dict[str, float]] = {}
    for name, value in info.metrics.items():
        match = _METRIC.match(name)
        if match:
            by_horizon.setdefault(int(match.group(1)), {})[match.group(2)] = float(value)
    records = []
    for horizon, values in sorted(by_horizon.items()):
        if "coverage" not in values:
            continue
        records.append(
            CoverageRecord(
                horizon=horizon,
                nominal=nominal,
                coverage=values.get("coverage"),
                worst_year=values.get("coverage_worst_year"),
                worst_ticker=values.get("coverage_worst_ticker"),
                width=values.get("width"),
                pinball_gain_vs_ewma=values.get("pinball_gain"),
                ewma_normal_coverage=values.get("coverage_ewma_normal"),
            )
        )
    return records


def realized_records(record: TrackRecordSummary | None) -> list[RealizedRecord]:
    """The realized track record per horizon, as ``GET /v1/model`` shows it."""
    if record is None:
        return []
    return [
        RealizedRecord(
            horizon=h.horizon,
            nominal=record.interval,
            coverage=h.coverage,
            pinball=h.pinball,
            width=h.width,
            n=h.n,
            window_days=record.window_days,
            window_start=record.window_start,
            as_of=record.as_of,
        )
        for h in record.horizons
    ]


def model_card(predictor: Predictor) -> ModelCard:
    """The card of the served model (``GET /v1/model``)."""
    info, config = predictor.info, predictor.forecaster.config
    return ModelCard(
        model_name=info.model_name,
        version=info.version,
        alias=info.alias,
        run_id=info.run_id,
        data_watermark=info.watermark,
        feature_version=info.feature_version,
        loaded_from=info.source,
        training_mode=info.tags.get("training_mode"),
        max_horizon=predictor.max_horizon,
        interval=predictor.interval,
        quantiles=[float(q) for q in config.quantiles],
        coverage=coverage_records(info, predictor.interval),
        track_record=realized_records(predictor.track_record),
        metrics=dict(info.metrics),
        description=info.description,
        median=predictor.median_policy,
    )
