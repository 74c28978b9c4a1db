"""The one settings object of FinSimples.

Built once at each entry point (CLI command, flow, service ``__init__``) and passed down; nothing
below the entry points reads the environment. Every field can be set with an environment variable
``FINSIMPLES_<FIELD>`` or in a ``.env`` file (see ``.env.example``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """FinSimples configuration with embedded defaults that need no server."""

    model_config = SettingsConfigDict(
        env_prefix="FINSIMPLES_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    state_dir: Path = Field(
        default=Path(".finsimples"),
        description="Local folder for the default lake, the sqlite MLflow store and reports.",
    )

    # --- the lake -----------------------------------------------------------------------------
    lake_uri: str | None = Field(
        default=None,
        description="Where the Parquet lake lives: a local folder or s3://bucket/prefix. "
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
        description="Ingest compacts a year's files into one when the year holds this many.",
    )
    lake_keep_versions: int = Field(
        default=20,
        ge=1,
        description="Lake versions (manifests) kept by `lake vacuum`; older ones are removed.",
    )

    # --- ingest -------------------------------------------------------------------------------
    ingest_source_name: str | None = Field(
        default=None,
        description="Recorded in each row's `source`; default: the ingested file's name.",
    )

    # --- model registry (used from the training issue on) --------------------------------------
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI. Default: sqlite in <state_dir>/mlflow.db.",
    )

    # --- serving (used from the API issue on) --------------------------------------------------
    redis_url: str | None = Field(
        default=None, description="Redis URL for the prediction cache; unset: in-process cache."
    )
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint for the narrator."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="Narrator API key; unset: the template narrator writes."
    )

    @field_validator("lake_uri")
    @classmethod
    def _lake_uri_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError(
                f"lake_uri {value!r}: expected a local folder, file://PATH or s3://BUCKET/PREFIX"
            )
        return value

    @property
    def resolved_lake_uri(self) -> str:
        """The lake location with the default applied."""
        return self.lake_uri or str(self.state_dir / "lake")

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        """The MLflow URI with the sqlite default applied."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"
