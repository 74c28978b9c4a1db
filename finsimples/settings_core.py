"""The data side's half of the one settings object (see ``finsimples.settings``).

``Settings`` extends :class:`CoreSettings`: the fields here come first, in the order they always
had, and every one is still set with ``FINSIMPLES_<FIELD>``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config.gate import GatePolicy
from finsimples.environment import UnknownVariables
from training.config import TrainingConfig


class CoreSettings(BaseSettings):
    """The first half of :class:`finsimples.settings.Settings`: how settings are read, and the
    data side's fields (state folder, lake, ingest, training, registry), in their order."""

    model_config = SettingsConfigDict(
        env_prefix="FINSIMPLES_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, and a check refusing misspelt ``FINSIMPLES_*`` variables."""
        sources = (init_settings, env_settings, dotenv_settings, file_secret_settings)
        return (*sources, UnknownVariables(settings_cls))

    state_dir: Path = Field(
        default=Path(".finsimples"),
        description="Local folder for the default lake, the sqlite MLflow store and reports.",
    )

    # --- the lake -----------------------------------------------------------------------------
    lake_uri: str | None = Field(
        default=None,
        description="Where the lake's Delta tables live: a local folder or s3://bucket/prefix. "
        "Default: <state_dir>/lake.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 API endpoint (MinIO, moto, ...); unset means AWS S3.",
    )
    s3_access_key_id: SecretStr | None = Field(
        default=None, description="S3 access key; unset uses the standard AWS credential chain."
    )
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    lake_compact_min_files: int = Field(
        default=32,
        ge=2,
        description="Ingest compacts a year's files (Delta OPTIMIZE) once it holds this many.",
    )
    lake_vacuum_retention_hours: int = Field(
        default=168,
        ge=0,
        description="`lake vacuum` deletes files that no version younger than this needs "
        "(Delta's retention; versions older than it can no longer be read).",
    )
    lake_commit_attempts: int = Field(
        default=10,
        ge=1,
        description="Tries of a lake commit that loses the race to a concurrent writer before "
        "the write fails, naming the lake and the conflict.",
    )
    lake_commit_max_wait_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Longest jittered backoff between two tries of a lake commit.",
    )

    # --- ingest -------------------------------------------------------------------------------
    ingest_source_name: str | None = Field(
        default=None,
        description="Recorded in each row's `source`; default: the ingested file's name.",
    )

    # --- training, evaluation and the registry --------------------------------------------------
    training: TrainingConfig = Field(
        default=TrainingConfig(),
        description="Model, calibration and backtest settings (FINSIMPLES_TRAINING__<FIELD>).",
    )
    training_engine: Literal["local", "dask"] = Field(
        default="local",
        description="Where the boosters are fitted: `local` in the training process, `dask` on "
        "the Dask cluster at dask_scheduler (xgboost.dask; same features, calibration, model).",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="The Dask scheduler's address (tcp://host:8786) when training_engine=dask.",
    )
    gate: GatePolicy = Field(
        default=GatePolicy(),
        description="Promotion gate thresholds (FINSIMPLES_GATE__<FIELD>).",
    )
    gate_test_years: int = Field(
        default=2,
        ge=1,
        description="A full training run is gated on a walk-forward over this many last years.",
    )
    gate_recent_days: int = Field(
        default=126,
        ge=21,
        description="An incremental candidate and its champion are scored on this many latest "
        "trading days (those with known outcomes) for the gate.",
    )
    backtest_start: date = Field(
        default=date(2016, 1, 1), description="First test date of `finsimples backtest`."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI. Default: sqlite in <state_dir>/mlflow.db.",
    )
    model_name: str = Field(default="finsimples-forecaster", description="Registered model name.")
    experiment_name: str = Field(default="finsimples-training", description="Training runs.")
    audit_experiment_name: str = Field(
        default="finsimples-promotions", description="One run per promotion or rollback."
    )

    @property
    def resolved_lake_uri(self) -> str:
        """The lake location with the default applied."""
        return self.lake_uri or str(self.state_dir / "lake")

    @property
    def reports_dir(self) -> Path:
        """Where backtest tables and plots are written."""
        return self.state_dir / "reports"

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        """The MLflow URI with the sqlite default applied."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"
