"""The promotion gate's thresholds (``registry.gate`` applies them), embedded in the settings as
``Settings.gate`` (``FINSIMPLES_GATE__<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GatePolicy(BaseModel):
    """Thresholds of the gate; defaults from the product brief."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizons: tuple[int, ...] = Field((1, 5), description="horizons whose metrics are gated")
    nominal_coverage: float = Field(0.90, gt=0, lt=1)
    coverage_tolerance: float = Field(0.02, ge=0, description="pooled coverage within ± this")
    min_worst_year_coverage: float = Field(0.85, ge=0, le=1)
    min_worst_ticker_coverage: float = Field(0.85, ge=0, le=1)
    significance: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="one-sided Diebold-Mariano level: a loss comparison blocks only when the "
        "candidate is worse with a p-value below this",
    )
    practical_tolerance: float = Field(
        0.002,
        ge=0,
        description="a loss difference up to this share of the reference's mean loss is "
        "forgiven before testing (0.002: 0.2%)",
    )
    median_significance: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="the model's median is served (on the whole path) only if it beats the "
        "zero-return forecast's absolute error, averaged over the path's horizons, with a DM "
        "p-value below this",
    )
    feature_significance: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="the model's non-volatility features must make its pinball better than "
        "with them permuted across rows, with a DM p-value below this divided by the number of "
        "gated horizons, at one gated horizon at least (no practical tolerance: any information "
        "counts; a model trained on shuffled rows loses nothing when they are permuted)",
    )
    feature_permutations: int = Field(
        5, ge=1, le=50, description="permutations averaged by the feature test"
    )
    recent_coverage_slack: float = Field(
        0.02,
        ge=0,
        description="incremental candidate: its coverage on the latest days may be at most this "
        "much further from nominal than the champion's on the same rows",
    )
