"""What the forecast API takes and returns: the pydantic models behind its OpenAPI spec.

Request fields are declared with their constraints here, so BentoML validates them before any
code runs and the spec tells clients (and schema fuzzers) exactly what is accepted. The path
points are ``finsimples.forecast.PathPoint``, the same model the CLI prints.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from finsimples.forecast import PathPoint

MAX_HORIZON_DAYS = 30
"""Upper bound of the request schema; the served model's own maximum is checked at run time."""
BATCH_SCHEMA_MAX = 100
"""Upper bound of a batch in the schema; the configured ``batch_max_tickers`` is checked too."""

Ticker = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,11}$",
        description="Ticker as the exchange writes it (PETR4, AAPL, BRK.B); case-insensitive.",
        examples=["AAPL"],
    ),
]
HorizonDays = Annotated[
    int,
    Field(ge=1, le=MAX_HORIZON_DAYS, description="Trading days ahead (1..30).", examples=[5]),
]
Locale = Literal["pt-BR", "en"]
Source = Literal["fresh", "cache", "fallback"]


class Provenance(BaseModel):
    """Where an answer's numbers and text come from, and how fresh it is."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    alias: str
    run_id: str
    data_watermark: str = Field(description="last price date the model was trained on")
    feature_version: str
    lake_version: int = Field(description="lake version the forecast's prices came from")
    source: Source = Field(
        description="fresh: computed now; cache: prediction cache; "
        "fallback: last good answer, served because the fresh one was late"
    )
    stale: bool = Field(description="true for fallback answers")
    generated_at: dt.datetime = Field(description="when the answer was computed (UTC)")
    cached_at: dt.datetime | None = Field(
        default=None, description="when the cached or fallback answer was stored; null if fresh"
    )
    narrator: str = Field(description="'<LLM model>/<prompt version>' or 'template'")
    median: str = Field(
        default="model",
        description="the path's median policy in one phrase, the same for every day: the "
        "zero-return baseline, or the model's median made monotone in the day where it beat "
        "zero on the walk-forward (decided once per model, at training)",
    )


class Timings(BaseModel):
    """Milliseconds spent on this request, by step (null: step not run)."""

    total_ms: float
    cache_ms: float | None = None
    predict_ms: float | None = None
    narrate_ms: float | None = None


class ForecastAnswer(BaseModel):
    """A forecast: price path with calibrated quantiles, its narrative and its provenance."""

    ticker: str
    as_of: dt.date = Field(description="date of the last price used")
    last_price: float
    horizon_days: int
    locale: Locale = Field(description="language of the narrative")
    interval: float = Field(description="nominal coverage of the outer quantile pair, e.g. 0.9")
    path: list[PathPoint]
    narrative: str
    provenance: Provenance
    timings: Timings
    currency: str | None = Field(
        default=None, description="ISO code of the prices' currency (BRL, USD); null if unknown"
    )
    exchange: str | None = Field(
        default=None, description="MIC of the exchange whose sessions the path's dates are"
    )


class ApiErrorBody(BaseModel):
    """Every error answer of the API."""

    error: str = Field(description="machine-readable code, e.g. unknown_ticker")
    message: str
    field: str | None = Field(default=None, description="the request field at fault")
    suggestions: list[str] = Field(default_factory=list)
    retry_after: float | None = None


class StaleTickerBody(ApiErrorBody):
    """A 409 ``stale_ticker``: the ticker's prices stop too long before the lake's newest.

    Not forecast: a forecast from a long-gone last price would not be about today. The answer
    becomes a forecast again once its recent prices are ingested.
    """

    last_date: dt.date = Field(description="the ticker's last price date")
    lake_as_of: dt.date = Field(description="the lake's newest price date (any ticker)")
    sessions_behind: int = Field(
        description="trading sessions of the ticker's exchange after last_date, to lake_as_of"
    )
    days_behind: int = Field(description="calendar days from last_date to lake_as_of")
    stale_after_sessions: int = Field(description="the threshold: more sessions than this")


class UnexplainedJumpBody(ApiErrorBody):
    """A 409 ``unexplained_jump``: the ticker's recent prices move like a split, reverse split
    or bonus that no corporate event explains.

    Not forecast: the range would be built on a fake crash or rally. The answer becomes a
    forecast again once the event is ingested (``ticker,ex_date,kind,value``).
    """

    jump_date: dt.date = Field(description="the session of the move")
    ratio: float = Field(description="the adjusted close on jump_date over the one before")
    likely: str = Field(description="what the move looks like, e.g. 'a 2:1 split'")


class ConflictBody(RootModel[StaleTickerBody | UnexplainedJumpBody]):
    """A 409: ``stale_ticker`` or ``unexplained_jump``; the request is valid, the lake's state
    refuses it."""


class FieldError(BaseModel):
    """One field that failed validation."""

    field: str = Field(description="dotted path of the field, e.g. horizon_days or tickers.0")
    message: str
    type: str = Field(description="pydantic's error type, e.g. less_than_equal")


class ValidationErrorBody(ApiErrorBody):
    """A 422: the first failing field in ``field`` and ``message``, every one in ``fields``."""

    fields: list[FieldError] = Field(default_factory=list)


class BatchItem(BaseModel):
    """One ticker of a batch: its answer, or its error with the status it would have had."""

    ticker: str
    status: int
    answer: ForecastAnswer | None = None
    # StaleTickerBody first: a stale item keeps its dates (a plain ApiErrorBody would drop them).
    error: StaleTickerBody | ApiErrorBody | None = None


class BatchAnswer(BaseModel):
    """The answers of a batch request, in request order."""

    results: list[BatchItem]
    timings: Timings


class TickerOut(BaseModel):
    """A ticker of the lake."""

    ticker: str
    first_date: dt.date
    last_date: dt.date
    forecastable: bool = Field(
        description="false when its recent history is too short, or when it is stale"
    )
    exchange: str | None = Field(default=None, description="MIC: BVMF, XNYS, XNAS")
    currency: str | None = Field(default=None, description="ISO code: BRL, USD")
    name: str | None = None
    timezone: str | None = Field(default=None, description="the exchange's time zone")
    sessions_behind: int = Field(
        default=0,
        description="sessions of its exchange from last_date to the lake's newest price date; "
        "a forecast is as of last_date",
    )
    stale: bool = Field(
        default=False,
        description="true when sessions_behind exceeds the service's stale_after_sessions: "
        "not forecast (409 stale_ticker)",
    )


class TickersAnswer(BaseModel):
    """A page of the tickers the API knows, best matches of ``q`` first, then by ticker."""

    lake_version: int
    tickers: list[TickerOut]
    total: int = Field(description="tickers matching the search and filters, over all pages")
    next_cursor: str | None = Field(
        default=None,
        description="pass as `cursor` (with the same q and forecastable) for the next page; "
        "null on the last page",
    )


class CoverageRecord(BaseModel):
    """The model's walk-forward backtest record at one evaluated horizon."""

    horizon: int
    nominal: float
    coverage: float | None = None
    worst_year: float | None = None
    worst_ticker: float | None = None
    width: float | None = None
    pinball_gain_vs_ewma: float | None = Field(
        default=None, description="> 0: lower pinball loss than the EWMA-normal baseline"
    )
    ewma_normal_coverage: float | None = None


class RealizedRecord(BaseModel):
    """What the served forecasts did at one horizon: the realized track record.

    Pooled over every ticker and model version whose forecasts were served (logged daily) and
    whose target date falls in the window; pinball and width are relative to the last price.
    """

    horizon: int
    nominal: float = Field(description="the interval's nominal coverage, e.g. 0.9")
    coverage: float = Field(description="share of realized prices inside the served interval")
    pinball: float = Field(
        description="pinball loss averaged over the served quantiles, as a share of the price"
    )
    width: float = Field(description="mean interval width, as a share of the last price")
    n: int = Field(description="scored forecasts in the window")
    window_days: int = Field(description="trading days of target dates in the window")
    window_start: dt.date | None = Field(description="first target date of the window")
    as_of: dt.date = Field(description="last target date scored")


class ModelCard(BaseModel):
    """The served model: version, metrics and coverage track record."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    version: str
    alias: str
    run_id: str
    data_watermark: str
    feature_version: str
    loaded_from: str
    training_mode: str | None
    max_horizon: int
    interval: float
    quantiles: list[float]
    coverage: list[CoverageRecord] = Field(
        description="the walk-forward backtest's record (before serving)"
    )
    track_record: list[RealizedRecord] = Field(
        default_factory=list,
        description="the served forecasts' realized record per horizon; empty until the daily "
        "flow has scored some",
    )
    metrics: dict[str, float]
    description: str
    median: str = Field(
        default="model",
        description="the served path's median policy in one phrase (see provenance.median)",
    )


class CacheReport(BaseModel):
    """What an admin cache operation did."""

    model_version: str
    removed: int = 0
    warmed: int = 0


HISTORY_MAX_DAYS = 756
"""Upper bound of ``GET /v1/history?days=``: three years of trading days."""


class HistoryPoint(BaseModel):
    """One trading day's adjusted close."""

    # `dt.date`, not `date`: the field is named `date` and would shadow the type.
    date: dt.date
    close: float


class HistoryAnswer(BaseModel):
    """A ticker's recent adjusted closes, oldest first (``GET /v1/history``)."""

    ticker: str
    lake_version: int = Field(description="lake version the prices were read from")
    points: list[HistoryPoint]
