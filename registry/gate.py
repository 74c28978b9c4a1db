"""The promotion gate: may a candidate replace the champion? Pure: metrics in, verdict out.

Metrics are the flat names a training run logs (see ``registry.metrics``): for each gated
horizon ``h``, ``h{h}_coverage`` (pooled empirical coverage of the headline interval),
``h{h}_coverage_worst_year``, ``h{h}_coverage_worst_ticker``, ``h{h}_pinball`` and
``h{h}_pinball_ewma_normal`` (the EWMA-normal baseline on the same test rows) and
``h{h}_mae_ratio`` (the median's MAE over the zero forecast's).

An incremental candidate keeps its champion's method, so it carries the walk-forward metrics
of the champion's last full refit; what the update itself changed is judged on the latest days
with known outcomes, scored for the candidate and the champion on the same rows
(``h{h}_recent_pinball`` / ``h{h}_recent_coverage``, the champion's with a ``_champion``
suffix; see ``training.evaluation.score_recent``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class GatePolicy(BaseModel):
    """Thresholds of the gate; defaults from the product brief."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizons: tuple[int, ...] = Field((1, 5), description="horizons whose metrics are gated")
    nominal_coverage: float = Field(0.90, gt=0, lt=1)
    coverage_tolerance: float = Field(0.02, ge=0, description="pooled coverage within ± this")
    min_worst_year_coverage: float = Field(0.85, ge=0, le=1)
    min_worst_ticker_coverage: float = Field(0.85, ge=0, le=1)
    max_pinball_vs_champion: float = Field(
        1.0, gt=0, description="candidate pinball / champion pinball must not exceed this"
    )
    max_pinball_vs_ewma: float = Field(
        1.0, gt=0, description="candidate pinball / EWMA-normal pinball must not exceed this"
    )
    max_mae_ratio: float = Field(
        1.0, gt=0, description="the median's MAE / the zero forecast's: no worse than zero"
    )
    max_recent_pinball_vs_champion: float = Field(
        1.01,
        gt=0,
        description="incremental candidate: its pinball on the latest days with known outcomes "
        "/ the champion's on the same rows must not exceed this",
    )
    recent_coverage_slack: float = Field(
        0.02,
        ge=0,
        description="incremental candidate: its coverage on the latest days may be at most this "
        "much further from nominal than the champion's on the same rows",
    )


GATED_METRICS = (
    "coverage",
    "coverage_worst_year",
    "coverage_worst_ticker",
    "pinball",
    "pinball_ewma_normal",
    "mae_ratio",
)


@dataclass(frozen=True)
class GateVerdict:
    """Whether the candidate passed, and every reason it did not."""

    passed: bool
    reasons: tuple[str, ...]

    def summary(self) -> str:
        """One line for logs, tags and the CLI."""
        return "passed" if self.passed else "blocked: " + "; ".join(self.reasons)


def evaluate_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: GatePolicy,
) -> GateVerdict:
    """Check a candidate's metrics against the policy and, if there is one, the champion's.

    Args:
        candidate: the candidate's logged metrics.
        champion: the current champion's logged metrics (None when there is no champion).
        policy: the thresholds.

    Returns:
        The verdict; a metric the candidate lacks blocks it (it was not evaluated).
    """
    reasons: list[str] = []
    for h in policy.horizons:
        names = {key: f"h{h}_{key}" for key in GATED_METRICS}
        missing = sorted(name for name in names.values() if name not in candidate)
        reasons += _recent_reasons(candidate, h, policy)
        if missing:
            reasons.append(f"h={h}: not evaluated ({', '.join(missing)})")
            continue
        m = {key: float(candidate[name]) for key, name in names.items()}
        if abs(m["coverage"] - policy.nominal_coverage) > policy.coverage_tolerance:
            reasons.append(
                f"h={h}: coverage {m['coverage']:.3f} outside {policy.nominal_coverage:.2f} "
                f"± {policy.coverage_tolerance:.2f}"
            )
        if m["coverage_worst_year"] < policy.min_worst_year_coverage:
            reasons.append(
                f"h={h}: worst-year coverage {m['coverage_worst_year']:.3f} "
                f"< {policy.min_worst_year_coverage}"
            )
        if m["coverage_worst_ticker"] < policy.min_worst_ticker_coverage:
            reasons.append(
                f"h={h}: worst-ticker coverage {m['coverage_worst_ticker']:.3f} "
                f"< {policy.min_worst_ticker_coverage}"
            )
        if m["pinball"] > m["pinball_ewma_normal"] * policy.max_pinball_vs_ewma:
            reasons.append(
                f"h={h}: pinball {m['pinball']:.6f} worse than EWMA-normal "
                f"{m['pinball_ewma_normal']:.6f}"
            )
        if m["mae_ratio"] > policy.max_mae_ratio:
            reasons.append(
                f"h={h}: MAE ratio vs zero {m['mae_ratio']:.4f} > {policy.max_mae_ratio} "
                "(point forecast worse than zero)"
            )
        best = None if champion is None else champion.get(names["pinball"])
        if best is not None and m["pinball"] > float(best) * policy.max_pinball_vs_champion:
            reasons.append(
                f"h={h}: pinball {m['pinball']:.6f} worse than the champion's {float(best):.6f}"
            )
    return GateVerdict(passed=not reasons, reasons=tuple(reasons))


def _recent_reasons(candidate: Mapping[str, float], h: int, policy: GatePolicy) -> list[str]:
    """What blocks an incremental candidate on the latest days (nothing when not scored)."""
    names = [
        f"h{h}_recent_{key}{who}" for key in ("pinball", "coverage") for who in ("", "_champion")
    ]
    if not any(name in candidate for name in names):
        return []
    missing = [name for name in names if name not in candidate]
    if missing:
        return [f"h={h}: recent window not evaluated ({', '.join(missing)})"]
    pinball, champion_pinball, coverage, champion_coverage = (float(candidate[n]) for n in names)
    reasons = []
    if pinball > champion_pinball * policy.max_recent_pinball_vs_champion:
        reasons.append(
            f"h={h}: pinball on the latest days {pinball:.6f} worse than the champion's "
            f"{champion_pinball:.6f} on the same rows"
        )
    miss, champion_miss = (abs(c - policy.nominal_coverage) for c in (coverage, champion_coverage))
    if miss > champion_miss + policy.recent_coverage_slack:
        reasons.append(
            f"h={h}: coverage on the latest days {coverage:.3f} further from "
            f"{policy.nominal_coverage:.2f} than the champion's {champion_coverage:.3f}"
        )
    return reasons
