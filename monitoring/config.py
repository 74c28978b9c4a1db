"""Drift check settings: windows and thresholds, frozen.

Kept apart from ``monitoring.drift`` so the app settings can embed :class:`DriftConfig` without
importing Evidently (slow to import, and never needed by the serving process).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DriftConfig(BaseModel):
    """Windows and thresholds of the drift check.

    Evidently's default method switches from a KS p-value to Wasserstein at 0.1 past 1000
    reference rows; on autocorrelated rolling-window features either flags over 70% of the
    columns in every quarter of the bundled sample, calm or not. Half a reference std of
    Wasserstein distance flags over half of them in 2008-09, August 2015 and March 2020, and
    under a fifth in calm quarters (2012-14, 2017, 2019). A coverage tolerance of 0.075 alerted
    in 3.6% of 60-day windows over 2010-2022 (about 1% outside the 2011 and 2020 stress), 0.05 in
    12%: each alert can start a full retrain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    current_days: int = Field(60, ge=5, description="trading days of the current window")
    reference_days: int = Field(
        504, ge=20, description="trading days of the reference window, just before the current"
    )
    drift_share: float = Field(
        0.5, gt=0, le=1, description="dataset drift when this share of feature columns drifted"
    )
    horizons: tuple[int, ...] = Field((1, 5), description="horizons whose coverage is checked")
    method: str = Field(
        "wasserstein",
        description="Evidently drift method of every column (see `threshold`)",
    )
    threshold: float = Field(
        0.5,
        gt=0,
        description="a column drifts at this score or beyond: for Wasserstein, reference stds",
    )
    coverage_tolerance: float = Field(
        0.075, ge=0, lt=1, description="alert when realized coverage is off nominal by more"
    )
    min_outcomes: int = Field(
        100, ge=1, description="fewer realized outcomes in a window: its coverage is not judged"
    )
