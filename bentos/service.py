"""The forecast API: a thin BentoML service over ``bentos.engine``.

Endpoints (all under ``/v1/``, behind API keys when configured; health, metrics and docs open):

- ``POST /v1/forecast`` {ticker, horizon_days, locale}: one forecast;
- ``POST /v1/forecast/batch`` {tickers, horizon_days, locale}: up to ``batch_max_tickers``;
- ``GET /v1/tickers?q=&forecastable=&limit=&cursor=``: a page of the lake's tickers (search,
  pagination: ``bentos.ticker_search``); ``GET /v1/model``: the served model's card;
- ``GET /v1/history?ticker=&days=``: a ticker's recent closes (the page's chart);
- ``/app/``: the investor's page (static files, ``bentos.page``); ``/`` redirects to it;
- ``POST /v1/admin/cache/invalidate`` and ``/v1/admin/cache/warm``: the deploy hook's steps;
  admin keys only (``bentos.edge``).

The model comes from the BentoML model store (``bentos.model_store.import_champion``, packaged
by ``bentoml build``; for local development run ``python -m bentos.package --prepare`` before
``bentoml serve``). Settings are read once, here.

Memory: ``bentoml serve`` imports this module in its supervisor process too, which only needs
the service's definition (routes, schemas, model tag). So the module imports nothing heavy:
pandas, XGBoost, scipy, redis and openai come with ``bentos.wiring``, ``bentos.engine`` and
``bentos.errors``, imported in ``__init__`` and the methods, i.e. in the worker only
(``tests/unit/serving/test_service_imports.py`` checks it). After start-up the worker moves
everything it allocated out of the garbage collector's reach (``gc.freeze``), so a full
collection no longer walks the hundreds of thousands of start-up objects while requests wait.
"""

import gc
import json
import logging
import socket
import time
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from bentos.edge import ADMIN_PREFIX, EdgeMiddleware, EdgePolicy, validation_body
from bentos.faults import NO_FAULT, Fault, FaultPlan
from bentos.model_store import BENTO_MODEL_NAME
from bentos.openapi import Link, document_errors, document_links, document_security, limit_items
from bentos.page import page_app
from bentos.schemas import (
    BATCH_SCHEMA_MAX,
    HISTORY_MAX_DAYS,
    BatchAnswer,
    BatchItem,
    CacheReport,
    ForecastAnswer,
    HistoryAnswer,
    HorizonDays,
    Locale,
    ModelCard,
    Ticker,
    TickerOut,
    TickersAnswer,
    Timings,
)
from bentos.ticker_search import (
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_QUERY,
    QUERY_PATTERN,
)
from config.buckets import LATENCY_BUCKETS

if TYPE_CHECKING:
    from bentos.errors import ApiError
    from bentos.wiring import Runtime

log = logging.getLogger(__name__)

FORECAST_ROUTE = "/v1/forecast"
BATCH_ROUTE = "/v1/forecast/batch"
INVALIDATE_ROUTE = "/v1/admin/cache/invalidate"
WARM_ROUTE = "/v1/admin/cache/warm"
TICKER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,11}$"  # as bentos.schemas.Ticker
FAULT_DELAY_HEADER = "x-finsimples-fault-delay"
ModelVersion = Annotated[str, Field(pattern=r"^[A-Za-z0-9._+\-]{1,64}$")]
info_app = FastAPI(title="FinSimples info", docs_url=None, redoc_url=None, openapi_url=None)


@bentoml.service(
    name="finsimples-forecast",
    threads=32,
    traffic={"timeout": 60},
    metrics={"duration": {"buckets": list(LATENCY_BUCKETS)}},
)
@bentoml.asgi_app(info_app, path="/v1")
@bentoml.asgi_app(page_app(), path="/")
class ForecastService:
    """Calibrated price-range forecasts with narratives, cached, within a latency budget."""

    model = bentoml.models.BentoModel(f"{BENTO_MODEL_NAME}:latest")

    def __init__(self) -> None:
        from bentos.fallback import DEFAULT_SNAPSHOT
        from bentos.history import PriceHistory
        from bentos.log_redaction import redact_validation_input
        from bentos.metrics import service_metrics
        from bentos.model_store import load_from_store, served_model
        from bentos.wiring import build_runtime
        from finsimples.settings import Settings

        redact_validation_input()  # a bad request body's values stay out of the logs
        settings = Settings()
        replica_id = settings.replica_id or socket.gethostname()
        self.fault_injection = settings.fault_injection
        self.faults = FaultPlan(settings.resolved_fault_plan_path, replica_id)
        # The packaged model (resolved by `bentoml serve` before start-up), unless the pod
        # pins a registry version its init container imported (bentos.model_fetch).
        model = load_from_store(served_model(self.model, settings.model_version))
        self.runtime = build_runtime(
            settings,
            model,
            replica_id=replica_id,
            snapshot=settings.fallback_snapshot_path or DEFAULT_SNAPSHOT,
            metrics=service_metrics(),
            validated_paths=frozenset({FORECAST_ROUTE, BATCH_ROUTE, INVALIDATE_ROUTE, WARM_ROUTE}),
        )
        self.runtime.start_refresher(settings.lake_refresh_seconds)
        self.runtime.start_process_usage(settings.process_metrics_seconds)
        self.runtime.start_model_status(settings.model_gauges_seconds)
        self.history = PriceHistory(self.runtime.predictor)
        log.info("serving %s v%s", model[1].model_name, model[1].version)
        # Start-up objects (modules, the model, the lake's windows) live as long as the worker:
        # out of the collector's generations, they cost no time in full collections.
        gc.collect()
        gc.freeze()

    @bentoml.on_shutdown
    def close(self) -> None:
        """Release threads and connections."""
        self.runtime.close()

    def _fault(self, ctx: bentoml.Context) -> Fault:
        """The fault to inject in this request: the replica's plan, the request's delay header."""
        if not self.fault_injection:
            return NO_FAULT
        fault = self.faults.current()
        try:
            delay = float(ctx.request.headers.get(FAULT_DELAY_HEADER, 0))
        except ValueError:
            delay = 0.0
        return Fault(fault.status, max(fault.delay, delay))

    def _reply(self, ctx: bentoml.Context, error: "ApiError") -> JSONResponse:
        ctx.response.status_code = error.status  # BentoML applies the context's status last
        body = error.body.model_dump(mode="json")  # a stale_ticker body holds dates
        return JSONResponse(body, error.status, headers=error.headers)

    @bentoml.api(route=FORECAST_ROUTE)
    def forecast(
        self,
        ticker: Ticker,
        horizon_days: HorizonDays = 5,
        locale: Locale = "pt-BR",
        ctx: bentoml.Context = None,  # type: ignore[assignment]
    ) -> ForecastAnswer:
        """Forecast a ticker's price path over ``horizon_days`` trading days."""
        from bentos.engine import Query
        from bentos.errors import api_error, injected_fault

        started = time.monotonic()
        fault = self._fault(ctx)
        if fault.status is not None:
            return self._reply(ctx, injected_fault(fault.status))  # type: ignore[return-value]
        query = Query.of(ticker, horizon_days, locale)
        try:
            return self.runtime.engine.answer(query, started, fault_delay=fault.delay)
        except Exception as exc:
            error = api_error(exc)
            if error is None:
                raise
            return self._reply(ctx, error)  # type: ignore[return-value]

    @bentoml.api(route=BATCH_ROUTE)
    def forecast_batch(
        self,
        tickers: Annotated[list[Ticker], Field(min_length=1, max_length=BATCH_SCHEMA_MAX)],
        horizon_days: HorizonDays = 5,
        locale: Locale = "pt-BR",
        ctx: bentoml.Context = None,  # type: ignore[assignment]
    ) -> BatchAnswer:
        """Forecast several tickers at once; each item carries its own status."""
        from bentos.engine import Query
        from bentos.errors import api_error, invalid_field

        started = time.monotonic()
        limit = self.runtime.settings.batch_max_tickers
        if len(tickers) > limit:
            too_many = invalid_field("tickers", f"at most {limit} tickers")
            return self._reply(ctx, too_many)  # type: ignore[return-value]
        queries = [Query.of(t, horizon_days, locale) for t in tickers]
        results = self.runtime.engine.answer_many(queries, started)
        items = []
        for query, result in zip(queries, results, strict=True):
            if not isinstance(result, Exception):
                items.append(BatchItem(ticker=query.ticker, status=200, answer=result))
                continue
            error = api_error(result)
            if error is None:
                raise result
            items.append(BatchItem(ticker=query.ticker, status=error.status, error=error.body))
        total = round((time.monotonic() - started) * 1000, 3)
        return BatchAnswer(results=items, timings=Timings(total_ms=total))

    @bentoml.api(route=INVALIDATE_ROUTE)
    def invalidate_cache(self, model_version: ModelVersion) -> CacheReport:
        """Drop every cached forecast and narrative of ``model_version``."""
        removed = self.runtime.invalidate(model_version)
        return CacheReport(model_version=model_version, removed=removed)

    @bentoml.api(route=WARM_ROUTE)
    def warm_cache(
        self,
        tickers: Annotated[list[Ticker], Field(max_length=BATCH_SCHEMA_MAX)] | None = None,
        horizons: Annotated[list[HorizonDays], Field(min_length=1, max_length=30)] = [5],  # noqa: B006
        locales: Annotated[list[Locale], Field(min_length=1, max_length=2)] = ["pt-BR", "en"],  # noqa: B006
    ) -> CacheReport:
        """Compute and cache this replica's answers ahead of requests (after a deploy).

        Default tickers: the ``warm_tickers`` most requested ones (counted in the cache: over
        every replica with Redis), topped up with the lake's when fewer were requested.
        """
        runtime = self.runtime
        if tickers is None:
            tickers = runtime.engine.popular_tickers(runtime.settings.warm_tickers)
        warmed = runtime.engine.warm(tickers, horizons, locales)
        return CacheReport(model_version=runtime.predictor.info.version, warmed=warmed)

    @info_app.get("/tickers", response_model=TickersAnswer)
    def list_tickers(
        self,
        request: Request,
        q: Annotated[
            str, Query(max_length=MAX_QUERY, pattern=QUERY_PATTERN, examples=["PETR"])
        ] = "",
        forecastable: Annotated[bool | None, Query(description="only (not) forecastable")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="tickers per page")] = (
            DEFAULT_LIMIT
        ),
        cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    ) -> TickersAnswer:
        """A page of the lake's tickers, with their dates, exchange and name.

        ``q`` searches tickers and names (case and accents ignored): the ticker itself first,
        then tickers starting with ``q``, containing it, then names. ``next_cursor`` gives the
        next page (same ``q`` and ``forecastable``). Without parameters: the first
        ``limit`` tickers by ticker, and ``total``.
        """
        from bentos.ticker_search import (
            BadQueryError,
            TickerQuery,
            search_tickers,
            unknown_parameter,
        )

        predictor = self.runtime.predictor
        query = TickerQuery(q=q, forecastable=forecastable, limit=limit, cursor=cursor)
        try:
            # A misspelt parameter (`limt=20`) is refused, not silently ignored.
            unknown_parameter(request.query_params.keys())
            page = search_tickers(predictor.tickers(), query)
        except BadQueryError as exc:
            error = {"loc": ["query", exc.field], "msg": str(exc), "type": "value_error"}
            raise RequestValidationError([error]) from exc
        return TickersAnswer(
            lake_version=predictor.lake_version,
            tickers=[TickerOut(**vars(window)) for window in page.items],
            total=page.total,
            next_cursor=page.next_cursor,
        )

    @info_app.get("/model", response_model=ModelCard)
    def describe_model(self) -> ModelCard:
        """The served model's card: version, metrics, coverage track record."""
        from bentos.answers import model_card

        return model_card(self.runtime.predictor)

    @info_app.get("/history", response_model=HistoryAnswer)
    def price_history(
        self,
        ticker: Annotated[str, Query(pattern=TICKER_PATTERN, description="e.g. AAPL")],
        days: Annotated[int, Query(ge=1, le=HISTORY_MAX_DAYS, description="trading days")] = 252,
    ) -> HistoryAnswer:
        """A ticker's last ``days`` adjusted closes, oldest first (the page's price chart)."""
        from bentos.errors import api_error

        try:
            return self.history.history(ticker, days)
        except Exception as exc:
            error = api_error(exc)
            if error is None:
                raise
            return JSONResponse(error.body.model_dump(), error.status)  # type: ignore[return-value]


@info_app.exception_handler(RequestValidationError)
async def _invalid_query(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A GET route's bad query parameter: a 422 naming it, like the POST routes' 422s."""
    details = [{**e, "loc": [p for p in e["loc"] if p != "query"]} for e in exc.errors()]
    body = validation_body(json.dumps({"detail": details}, default=str).encode())
    return JSONResponse(body, 422)


def _current_runtime() -> "Runtime | None":
    """The running service's runtime; None until its ``__init__`` has finished."""
    try:
        service = bentoml.get_current_service()
    except Exception:  # BentoMLException "service isn't instantiated yet"
        return None
    return getattr(service, "runtime", None)


def _current_policy() -> EdgePolicy | None:
    """The running service's edge policy; None until its ``__init__`` has finished."""
    runtime = _current_runtime()
    return runtime.policy if runtime is not None else None


# What each route answers besides 200, for the OpenAPI spec (see bentos.openapi); a route that
# takes a key also answers 400 to one sent two ways (bentos.openapi.document_security).
# 403: a key of the other kind (an admin key on a client route, a client key on an admin
# route), or an admin route called through a proxy while no key is configured (bentos.edge).
ROUTE_ERRORS = {
    ("post", FORECAST_ROUTE): (401, 403, 404, 409, 413, 415, 422, 429, 503),
    # a batch item carries its own 404/409/503
    ("post", BATCH_ROUTE): (401, 403, 413, 415, 422, 429, 503),
    ("post", INVALIDATE_ROUTE): (401, 403, 413, 415, 422, 429, 503),
    ("post", WARM_ROUTE): (401, 403, 413, 415, 422, 429, 503),
    ("get", "/v1/tickers"): (401, 403, 422, 429, 503),
    ("get", "/v1/model"): (401, 403, 429, 503),
    ("get", "/v1/history"): (401, 403, 404, 422, 429, 503),
}


# Which answer's values another route takes, as OpenAPI links (see bentos.openapi).
_FIRST_TICKER = "$response.body#/tickers/0/ticker"
ROUTE_LINKS = {
    ("get", "/v1/tickers"): {
        "ForecastTicker": Link(("post", FORECAST_ROUTE), body={"ticker": _FIRST_TICKER}),
        "TickerHistory": Link(("get", "/v1/history"), parameters={"query.ticker": _FIRST_TICKER}),
    },
    ("post", FORECAST_ROUTE): {
        "TickerHistory": Link(
            ("get", "/v1/history"), parameters={"query.ticker": "$response.body#/ticker"}
        ),
    },
    ("get", "/v1/model"): {
        "InvalidateVersion": Link(
            ("post", INVALIDATE_ROUTE), body={"model_version": "$response.body#/version"}
        ),
    },
    ("post", WARM_ROUTE): {
        "InvalidateWarmed": Link(
            ("post", INVALIDATE_ROUTE), body={"model_version": "$response.body#/model_version"}
        ),
    },
}


def _served_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The generated spec with the error answers, links and this replica's batch limit."""
    document_errors(spec, ROUTE_ERRORS)
    document_links(spec, ROUTE_LINKS)
    runtime = _current_runtime()
    if runtime is not None:
        limit = runtime.settings.batch_max_tickers
        limit_items(spec, "post", BATCH_ROUTE, "tickers", limit)
        auth = runtime.policy.auth
        if auth is not None:  # keys configured: the admin routes need one, and so may the others
            keyed = [
                r for r in ROUTE_ERRORS if r[1].startswith(ADMIN_PREFIX) or auth.guards_clients
            ]
            document_security(spec, keyed)
    return spec


ForecastService.add_asgi_middleware(  # type: ignore[attr-defined]
    EdgeMiddleware,
    policy=_current_policy,
    openapi=_served_spec,
)
