"""Training settings: every threshold and hyperparameter of the forecast core, frozen.

The app settings embed :class:`TrainingConfig`; nothing in ``training/`` reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BoosterParams(BaseModel):
    """XGBoost hyperparameters of one anchor-horizon quantile model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_estimators: int = Field(60, ge=1, description="boosting rounds of a full refit")
    max_depth: int = Field(3, ge=1, le=12)
    learning_rate: float = Field(0.05, gt=0, le=1)
    subsample: float = Field(0.7, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(200.0, ge=0, description="rows per leaf; keeps tails smooth")
    reg_lambda: float = Field(1.0, ge=0)
    max_bin: int = Field(64, ge=2)
    n_jobs: int = Field(2, ge=1, description="threads; the serving box has 2 cores")
    seed: int = 0


class TrainingConfig(BaseModel):
    """Settings of features-to-forecast training, calibration, evaluation and the tripwire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_horizon: int = Field(30, ge=1, le=60, description="forecast horizons 1..max_horizon")
    anchor_horizons: tuple[int, ...] = Field(
        (1, 5, 10, 21, 30),
        description="horizons with their own model; the others are interpolated between them",
    )
    quantiles: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
    interval_coverage: float = Field(
        0.9, gt=0, lt=1, description="nominal coverage of the headline interval (a quantile pair)"
    )
    min_daily_vol: float = Field(
        1e-4, gt=0, description="floor on the EWMA daily vol that scales the target"
    )
    booster: BoosterParams = BoosterParams()
    vol_term_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="daily persistence phi of a GARCH-style volatility term structure: the "
        "h-day scale mean-reverts from sigma_t towards the ticker's long-run vol (None: flat "
        "sigma_t * sqrt(h), RiskMetrics)",
    )

    # --- calibration ----------------------------------------------------------------------------
    calibration: Literal["aci", "cqr"] = Field(
        "aci", description="cqr: split conformal; aci: cqr plus per-ticker adaptive levels"
    )
    calibration_days: int = Field(
        504,
        ge=20,
        description="trading dates at the end of the training data held out to calibrate",
    )
    min_train_days: int = Field(
        252, ge=20, description="fewest dates the boosters must see before the calibration window"
    )
    aci_gamma: float = Field(
        0.01, gt=0, lt=1, description="ACI step (Gibbs & Candes): level change per revealed miss"
    )
    aci_gamma_power: float = Field(
        0.5, ge=0, le=1, description="the step at horizon h is aci_gamma / h**aci_gamma_power"
    )
    aci_calm_floor_horizon: int | None = Field(
        None,
        ge=1,
        description="from this anchor horizon on, a ticker's ACI levels never fall below the "
        "CQR level while its vol is calm (sigma_t < aci_calm_ratio * long-run vol); None: off",
    )
    aci_calm_ratio: float = Field(
        1.0, gt=0, description="sigma_t / long-run vol below which a ticker counts as calm"
    )
    cqr_vol_edges: tuple[float, ...] | None = Field(
        None,
        description="Mondrian CQR: edges of sigma_t / long-run vol cutting the calibration "
        "window into volatility buckets, each widened to cover its own rows (training.mondrian);"
        " None: one pooled width",
    )

    # --- incremental update ---------------------------------------------------------------------
    update_rounds: int = Field(10, ge=1, description="boosting rounds added by an update")
    update_learning_rate: float = Field(
        0.02, gt=0, le=1, description="small: a month of new rows should nudge, not steer"
    )
    update_min_days: int = Field(
        21, ge=1, description="new dates the boosters have not seen before an update boosts again"
    )

    # --- walk-forward evaluation ------------------------------------------------------------------
    refit_months: int = Field(12, ge=1, description="months between full refits in a backtest")
    update_months: int | None = Field(
        None,
        ge=1,
        description="months between incremental updates inside each refit block of a backtest "
        "(None: full refits only); measures what `train --incremental` does between refits",
    )
    eval_horizons: tuple[int, ...] = (1, 5, 10, 21, 30)

    # --- leakage tripwire (results this good at h=1 are a bug, not an edge) -----------------------
    tripwire_horizon: int = Field(1, ge=1)
    tripwire_max_mae_ratio: float = Field(0.98, description="trip when MAE ratio vs zero is below")
    tripwire_max_directional_accuracy: float = Field(0.56, description="trip when DA is above")
    tripwire_max_r2_oos: float = Field(0.02, description="trip when R2oos vs zero is above")
    tripwire_max_rank_ic: float = Field(0.10, description="trip when mean rank IC is above")

    @model_validator(mode="after")
    def _check_consistency(self) -> TrainingConfig:
        anchors = self.anchor_horizons
        if not anchors or list(anchors) != sorted(set(anchors)):
            raise ValueError(f"anchor_horizons must be strictly increasing, got {anchors}")
        if anchors[0] != 1 or anchors[-1] != self.max_horizon:
            raise ValueError(
                f"anchor_horizons must start at 1 and end at max_horizon={self.max_horizon}, "
                f"got {anchors}"
            )
        qs = self.quantiles
        if list(qs) != sorted(set(qs)) or not all(0 < q < 1 for q in qs):
            raise ValueError(f"quantiles must be strictly increasing inside (0, 1), got {qs}")
        if 0.5 not in qs:
            raise ValueError(f"quantiles must include the median 0.5, got {qs}")
        # Calibration widens central intervals, so every lower level needs its mirror.
        unpaired = [q for q in qs if not any(abs(q + other - 1) < 1e-9 for other in qs)]
        if unpaired:
            raise ValueError(f"quantiles must be symmetric around 0.5; {unpaired} lack 1 - q")
        for level in self.interval_levels:
            if not any(abs(q - level) < 1e-9 for q in qs):
                raise ValueError(
                    f"interval_coverage={self.interval_coverage} needs quantile {level:g} in {qs}"
                )
        edges = self.cqr_vol_edges
        if edges is not None and (not edges or list(edges) != sorted(set(edges)) or edges[0] <= 0):
            raise ValueError(f"cqr_vol_edges must be positive and increasing, got {edges}")
        bad = [h for h in self.eval_horizons if not 1 <= h <= self.max_horizon]
        if bad:
            raise ValueError(f"eval_horizons {bad} outside 1..max_horizon={self.max_horizon}")
        return self

    @property
    def interval_levels(self) -> tuple[float, float]:
        """The (lower, upper) quantile levels of the headline interval, e.g. (0.05, 0.95)."""
        alpha = 1.0 - self.interval_coverage
        return (round(alpha / 2, 10), round(1 - alpha / 2, 10))
