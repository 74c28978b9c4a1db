"""Drift check settings: windows and thresholds, frozen.

Kept apart from ``monitoring.drift`` so the app settings can embed :class:`DriftConfig` without
importing Evidently (slow to import, and never needed by the serving process).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DriftConfig(BaseModel):
    """Windows and thresholds of the drift check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    current_days: int = Field(60, ge=5, description="trading days of the current window")
    reference_days: int = Field(
        504, ge=20, description="trading days of the reference window, just before the current"
    )
    drift_share: float = Field(
        0.5, gt=0, le=1, description="dataset drift when this share of feature columns drifted"
    )
    horizons: tuple[int, ...] = Field((1, 5), description="horizons whose coverage is checked")
    coverage_tolerance: float = Field(
        0.05, ge=0, lt=1, description="alert when realized coverage is off nominal by more"
    )
    min_outcomes: int = Field(
        100, ge=1, description="fewer realized outcomes in a window: its coverage is not judged"
    )
