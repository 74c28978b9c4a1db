"""The one settings object of FinSimples.

Built once at each entry point (CLI command, flow, service ``__init__``) and passed down; nothing
below the entry points reads the environment. Every field can be set with an environment variable
``FINSIMPLES_<FIELD>`` or in a ``.env`` file (see ``.env.example``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from config.loadtest import LoadTestConfig
from config.monitoring import AlertConfig, DriftConfig, SloConfig
from config.stack import StackConfig
from finsimples.freshness import DEFAULT_STALE_AFTER_SESSIONS
from finsimples.settings_core import CoreSettings


class Settings(CoreSettings):
    """FinSimples configuration with embedded defaults that need no server."""

    # --- serving: the forecast API ---------------------------------------------------------------
    latency_budget_seconds: float = Field(
        default=3.0, gt=0, description="Past this, answer from the read-only fallback store."
    )
    batch_max_tickers: int = Field(default=20, ge=1, description="Tickers per batch request.")
    max_request_body_bytes: int = Field(
        default=65_536,
        ge=1024,
        description="Largest POST body a replica reads (413 beyond); NGINX's client_max_body_size "
        "is 64k too.",
    )
    stale_after_sessions: int = Field(
        default=DEFAULT_STALE_AFTER_SESSIONS,
        ge=0,
        description="A ticker whose last price is more than this many sessions of its exchange "
        "behind the lake's newest price is not forecast (API 409 stale_ticker, CLI error); "
        "within it, it is forecast as of its own last date (finsimples/freshness.py).",
    )
    jump_tolerance: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="A one-day move within this relative distance of n:1 or 1:n (n = 2, 3, 4, 5, "
        "8, 10, ...) looks like a split; with no event to explain it the ingest names it, train "
        "leaves the ticker out and predict/the API answer 409 (finsimples/adjustment.py).",
    )
    jump_calm_sessions: int = Field(
        default=20,
        ge=5,
        description="Sessions before a move that say how much the ticker usually moves.",
    )
    jump_calm_multiple: float = Field(
        default=8.0,
        gt=1,
        description="A split-like move counts only when it is this many times the median daily "
        "move of the calm sessions before it (a crash in a wild market is not a split).",
    )
    api_key_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex of the accepted client API keys (`finsimples api-key new`); "
        "empty: the client routes are open (local use).",
    )
    admin_key_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex of the admin keys (`finsimples api-key new --admin`), the only "
        "keys the admin routes (/v1/admin/: cache warm-up and invalidation) accept; client "
        "keys get 403 there. With no client and no admin hashes, the admin routes answer only "
        "requests made directly on the replica's host.",
    )
    deploy_api_key: SecretStr | None = Field(
        default=None,
        description="The admin key `finsimples deploy` sends to the replicas' admin routes "
        "(cache warm-up and invalidation); its hash must be in admin_key_hashes when keys are "
        "on.",
    )
    api_key_rpm: float = Field(default=60.0, gt=0, description="Requests per minute per key.")
    api_key_burst: float | None = Field(
        default=None, gt=0, description="Burst per key; default one minute's worth."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis shared by the replicas: prediction cache, popular tickers, API-key "
        "and LLM rate limits; unset: all in-process (each replica its own).",
    )
    cache_ttl_seconds: float = Field(default=300.0, gt=0, description="Forecast cache TTL.")
    cache_max_entries: int = Field(default=10_000, ge=1, description="In-process cache bound.")
    redis_socket_timeout: float = Field(default=0.2, gt=0, description="Seconds per Redis reply.")
    redis_connect_timeout: float = Field(default=0.2, gt=0, description="Seconds to connect.")
    redis_error_cooldown_seconds: float = Field(
        default=1.0, ge=0, description="Redis is skipped this long after a failure."
    )
    replica_id: str | None = Field(
        default=None, description="Named in the X-FinSimples-Replica header; default: host name."
    )
    fallback_snapshot_path: Path | None = Field(
        default=None, description="Fallback answers loaded at start-up; default: the packaged one."
    )
    model_version: str | None = Field(
        default=None,
        pattern=r"^[0-9]*$",
        description="Serve this registry version, imported into BENTOML_HOME's model store at "
        "start-up (`python -m bentos.model_fetch`; in Kubernetes the pod annotation "
        "finsimples.io/model-version), instead of the model packaged in the bento. "
        "Unset or empty: the packaged model.",
    )
    lake_refresh_seconds: float = Field(
        default=60.0, gt=0, description="How often a replica checks the lake for new data."
    )
    process_metrics_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often a replica copies its workers' CPU time and memory into /metrics.",
    )
    model_gauges_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a replica re-reads the lake's track-record, retrain and drift "
        "records into its model gauges (and the track record /v1/model and narratives use).",
    )
    fault_injection: bool = Field(
        default=False,
        description="Honour the X-FinSimples-Fault-Delay request header and the fault plan "
        "(tests and drills only).",
    )
    fault_plan_path: Path | None = Field(
        default=None,
        description="With fault_injection on: a JSON file of the faults each replica injects, "
        'e.g. {"replica-2": {"status": 500}} (read again when it changes); '
        "default: <state_dir>/faults.json.",
    )
    warm_tickers: int = Field(
        default=10, ge=0, description="Most requested tickers warmed after a deploy."
    )

    # --- the stack: replicas behind NGINX, ports, timeouts, autoscaling --------------------------
    loadtest: LoadTestConfig = Field(
        default=LoadTestConfig(),
        description="The load test's SLA thresholds and keys (FINSIMPLES_LOADTEST__<FIELD>).",
    )
    stack: StackConfig = Field(
        default=StackConfig(),
        description="The 3-replica topology (FINSIMPLES_STACK__<FIELD>; see config/stack.py).",
    )

    # --- flows: the daily schedule, the drop location, drift checks -------------------------
    drop_uri: str | None = Field(
        default=None,
        description="Where new price files arrive for the ingest flow: a local folder or "
        "s3://bucket/prefix. Processed files move to processed/, bad ones to quarantine/. "
        "Default: <state_dir>/incoming.",
    )
    full_refit_every: int = Field(
        default=20,
        ge=1,
        description="Every Nth retrain refits from scratch (gated on a walk-forward); the ones "
        "between update the champion incrementally. 1: always full.",
    )
    daily_cron: str = Field(
        default="30 18 * * 1-5",
        description="When the daily flow runs if daily_exchanges is empty (in schedule_timezone).",
    )
    daily_exchanges: list[str] = Field(
        default_factory=lambda: ["BVMF", "XNYS"],
        description="One daily-flow schedule per exchange (MIC), at its close from its trading "
        "calendar plus daily_delay_minutes, in its own time zone (so US daylight saving moves "
        "the NYSE run in Brasília time); on a holiday the run logs 'market closed'. Nasdaq "
        "(XNAS) closes with NYSE: XNYS covers it.",
    )
    daily_delay_minutes: int = Field(
        default=30,
        ge=0,
        le=360,
        description="Minutes after an exchange's close the daily run starts.",
    )
    daily_every_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A compressed market clock, for rehearsals and tests: each daily deployment "
        "runs every N seconds instead of after its exchange's close, and a run takes its trading "
        "day from the files it finds (the ingest refuses a day the exchange did not trade) "
        "instead of checking the wall clock for a holiday. Unset in production.",
    )
    drift_cron: str = Field(default="0 20 * * 1-5", description="When the drift flow runs.")
    schedule_timezone: str = Field(
        default="America/Sao_Paulo", description="Time zone of the flow schedules."
    )
    flow_io_retries: int = Field(
        default=3, ge=0, description="Retries of a flow's I/O tasks (S3, MLflow, Redis)."
    )
    flow_io_backoff_seconds: float = Field(
        default=2.0,
        ge=0,
        description="First retry delay of an I/O task; it doubles at each retry.",
    )
    drift: DriftConfig = Field(
        default=DriftConfig(),
        description="Drift check windows and thresholds (FINSIMPLES_DRIFT__<FIELD>).",
    )
    drift_triggers_retrain: bool = Field(
        default=True,
        description="When the scheduled drift flow detects drift, it runs a full retrain.",
    )
    track_record_min_outcomes: int = Field(
        default=100,
        ge=1,
        description="Narratives quote the realized coverage at a horizon only when the track "
        "record's window holds this many scored forecasts there; fewer: 'not enough history'.",
    )
    monitoring_experiment_name: str = Field(
        default="finsimples-monitoring", description="One MLflow run per drift check."
    )

    # --- monitoring: SLOs and alert thresholds (monitoring/rules/ is generated from them) ---------
    slo: SloConfig = Field(
        default=SloConfig(),
        description="The API's availability and latency SLOs (FINSIMPLES_SLO__<FIELD>).",
    )
    alerts: AlertConfig = Field(
        default=AlertConfig(),
        description="Thresholds of the alert rules (FINSIMPLES_ALERTS__<FIELD>).",
    )

    # --- the narrator ----------------------------------------------------------------------------
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama)."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="Narrator API key; unset: the template narrator writes."
    )
    openai_model: str = Field(default="gpt-4o-mini", description="Chat model of the narrator.")
    llm_requests_per_minute: float = Field(default=60.0, gt=0, description="Client-side quota.")
    llm_request_timeout: float = Field(default=10.0, gt=0, description="Longest single request.")
    llm_max_attempts: int = Field(default=3, ge=1, description="Requests per narration.")
    llm_backoff_base_seconds: float = Field(default=0.25, gt=0)
    llm_backoff_cap_seconds: float = Field(default=2.0, gt=0)
    llm_min_attempt_seconds: float = Field(
        default=0.5, ge=0, description="Time that must be left before trying a request."
    )
    llm_max_concurrency: int = Field(default=8, ge=1, description="Narrator worker threads.")
    narrative_cache_ttl_seconds: float = Field(default=86_400.0, gt=0)
    template_fallback_ttl_seconds: float = Field(
        default=30.0,
        gt=0,
        description="An answer whose narrative is the template standing in for a failed LLM "
        "call is cached this long, so the LLM's text replaces it soon.",
    )

    @field_validator("lake_uri", "drop_uri")
    @classmethod
    def _storage_uri_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError(
                f"{info.field_name} {value!r}: expected a local folder, file://PATH or "
                "s3://BUCKET/PREFIX"
            )
        return value

    @model_validator(mode="after")
    def _dask_needs_a_scheduler(self) -> Settings:
        if self.training_engine == "dask" and not self.dask_scheduler:
            raise ValueError(
                "training_engine=dask needs dask_scheduler, the scheduler's address "
                "(FINSIMPLES_DASK_SCHEDULER=tcp://HOST:8786)"
            )
        return self

    @model_validator(mode="after")
    def _admin_keys_apart(self) -> Settings:
        """Admin and client keys are two disjoint sets, and the deploy's key is an admin key."""
        clients = {digest.strip().lower() for digest in self.api_key_hashes}
        admins = {digest.strip().lower() for digest in self.admin_key_hashes}
        if clients & admins:
            raise ValueError(
                f"{len(clients & admins)} hash(es) in both api_key_hashes and admin_key_hashes: "
                "a key is either a client key or an admin key; remove the admin key's hash from "
                "FINSIMPLES_API_KEY_HASHES"
            )
        if self.deploy_api_key is None or not (clients or admins):
            return self
        digest = hashlib.sha256(self.deploy_api_key.get_secret_value().encode()).hexdigest()
        if digest not in admins:
            where = " (it is a client key's hash)" if digest in clients else ""
            raise ValueError(
                "deploy_api_key: its SHA-256 is not in admin_key_hashes" + where + "; the "
                "deploy calls the admin routes, which take admin keys only: put its hash in "
                "FINSIMPLES_ADMIN_KEY_HASHES (`finsimples api-key new --admin` makes a key)"
            )
        return self

    @property
    def resolved_fault_plan_path(self) -> Path:
        """The fault plan's file with the default applied."""
        return self.fault_plan_path or self.state_dir / "faults.json"

    @property
    def resolved_drop_uri(self) -> str:
        """The drop location with the default applied."""
        return self.drop_uri or str(self.state_dir / "incoming")
