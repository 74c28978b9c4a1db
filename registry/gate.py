"""The promotion gate: may a candidate replace the champion? Pure: metrics in, verdict out.

Metrics are the flat names a training run logs (see ``registry.metrics``): for each gated
horizon ``h``, ``h{h}_coverage`` (pooled empirical coverage of the headline interval),
``h{h}_coverage_worst_year`` and ``h{h}_coverage_worst_ticker``, and Diebold-Mariano tests on
identical rows (``training.dm_test``): ``h{h}_dm_pinball_vs_ewma_normal[_p]`` (the walk-forward
against the EWMA-normal baseline) and, when there is a champion, ``h{h}_dm_{pinball,ae}_vs_
champion[_p]`` (candidate and champion on the same rows: the latest days with known outcomes
for a refit of the same configuration or an incremental update, the same walk-forward folds
when the configuration changed; ``champion_compared_on_folds`` is 1 then), and the feature
test ``h{h}_features_dm[_p]`` (``training.permutation``: the model against itself with its
non-volatility features permuted, on the latest rows its boosters never saw).

Loss comparisons block only what is significantly worse (one-sided p-value below
``significance`` after forgiving ``practical_tolerance``): a difference within noise never
flips the verdict. The median's point accuracy is not gated: where it does not beat the
zero-return forecast the served median is zero's (``training.median``).

A comparison whose losses were identical on every row (``..._identical`` instead of a statistic
and a p-value) is no evidence either way: it never blocks, and the verdict, the tags and the
model card say "identical to the champion: no test" rather than showing a number.

An incremental candidate also gets ``h{h}_recent_coverage`` (and ``_champion``) on the latest
days: its coverage may not drift further from nominal than the champion's on the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from config.gate import GatePolicy
from training.dm_test import evidence_p_value

GATED_METRICS = (
    "coverage",
    "coverage_worst_year",
    "coverage_worst_ticker",
)
CHAMPION_LOSSES = {"pinball": "pinball", "ae": "absolute error of the median"}
REFERENCES = {"champion": "the champion", "ewma_normal": "EWMA-normal"}


@dataclass(frozen=True)
class GateVerdict:
    """Whether the candidate passed, every reason it did not, and what was not a test."""

    passed: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for logs, tags and the CLI."""
        head = "passed" if self.passed else "blocked: " + "; ".join(self.reasons)
        return head + (f" ({'; '.join(self.notes)})" if self.notes else "")


def evaluate_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: GatePolicy,
) -> GateVerdict:
    """Check a candidate's metrics against the policy and, if there is one, the champion's.

    Args:
        candidate: the candidate's logged metrics.
        champion: the current champion's logged metrics (None when there is no champion: then
            nothing is compared with a champion and a calibrated, sane first model passes).
        policy: the thresholds.

    Returns:
        The verdict; a metric the candidate lacks blocks it (it was not evaluated).
    """
    reasons: list[str] = []
    for h in policy.horizons:
        names = {key: f"h{h}_{key}" for key in GATED_METRICS}
        ewma = f"h{h}_dm_pinball_vs_ewma_normal"
        missing = sorted(name for name in names.values() if name not in candidate)
        if evidence_p_value(candidate, ewma) is None:
            missing.append(f"{ewma}_p")
        reasons += _recent_reasons(candidate, h, policy)
        if missing:
            reasons.append(f"h={h}: not evaluated ({', '.join(missing)})")
            continue
        m = {key: float(candidate[name]) for key, name in names.items()}
        reasons += _calibration_reasons(m, h, policy)
        if _p(candidate, ewma) < policy.significance:
            reasons.append(
                f"h={h}: pinball significantly worse than EWMA-normal on the same rows "
                f"({_evidence(candidate, ewma)})"
            )
        if champion is not None:
            reasons += _champion_reasons(candidate, h, policy)
    reasons += _feature_reasons(candidate, policy)
    return GateVerdict(
        passed=not reasons, reasons=tuple(reasons), notes=tuple(identical_notes(candidate, policy))
    )


def identical_notes(metrics: Mapping[str, float], policy: GatePolicy) -> list[str]:
    """``"h=1: pinball, absolute error of the median identical to the champion: no test"``."""
    notes = []
    for h in policy.horizons:
        for against, losses in (("champion", CHAMPION_LOSSES), ("ewma_normal", {"pinball": ""})):
            same = [
                CHAMPION_LOSSES[loss]
                for loss in losses
                if metrics.get(f"h{h}_dm_{loss}_vs_{against}_identical") == 1.0
            ]
            if same:
                notes.append(
                    f"h={h}: {', '.join(same)} identical to {REFERENCES[against]}: no test"
                )
        if metrics.get(f"h{h}_features_dm_identical") == 1.0:
            notes.append(f"h={h}: permuting the features changed no forecast: no test")
    return notes


def _feature_reasons(candidate: Mapping[str, float], policy: GatePolicy) -> list[str]:
    """Do the features carry information? Significant at one gated horizon (Bonferroni)."""
    names = [f"h{h}_features_dm" for h in policy.horizons]
    p_values = {name: evidence_p_value(candidate, name) for name in names}
    missing = [f"{name}_p" for name, p in p_values.items() if p is None]
    if missing:
        return [f"features not tested ({', '.join(missing)})"]
    level = policy.feature_significance / len(names)
    if any(_p(candidate, name) < level for name in names):
        return []
    evidence = ", ".join(
        f"h={h} " + feature_figure(candidate, name)
        for h, name in zip(policy.horizons, names, strict=True)
    )
    return [
        "the features carry no information: with the non-volatility features permuted across "
        f"rows the pinball loss is not significantly worse at any gated horizon (needs p < "
        f"{level:.3g}; permuted: {evidence})"
    ]


def _calibration_reasons(m: Mapping[str, float], h: int, policy: GatePolicy) -> list[str]:
    """Coverage pooled, worst year and worst ticker, each with how far off it is."""
    reasons = []
    off = m["coverage"] - policy.nominal_coverage
    if abs(off) > policy.coverage_tolerance:
        reasons.append(
            f"h={h}: coverage {m['coverage']:.3f} outside {policy.nominal_coverage:.2f} "
            f"± {policy.coverage_tolerance:.2f} (off by {off:+.3f})"
        )
    for key, label, floor in (
        ("coverage_worst_year", "worst-year", policy.min_worst_year_coverage),
        ("coverage_worst_ticker", "worst-ticker", policy.min_worst_ticker_coverage),
    ):
        if m[key] < floor:
            reasons.append(
                f"h={h}: {label} coverage {m[key]:.3f} < {floor} (short by {floor - m[key]:.3f})"
            )
    return reasons


def feature_figure(metrics: Mapping[str, float], name: str) -> str:
    """``+1.04% p=0.003`` for the feature test ``name``, or ``identical: no test``."""
    if metrics.get(f"{name}_identical") == 1.0:
        return "identical: no test"
    return (
        f"{float(metrics.get(name + '_rel', float('nan'))):+.2%} "
        f"p={float(metrics[name + '_p']):.3f}"
    )


def _evidence(metrics: Mapping[str, float], name: str) -> str:
    """``+1.2% loss, DM 3.10, p=0.0010`` from a DM metric family.

    A constant differential has no statistic (its p-value is 0 or 1): ``constant difference``.
    """
    rel = metrics.get(f"{name}_rel")
    loss = f"{rel:+.2%} loss, " if rel is not None else ""
    stat = f"DM {float(metrics[name]):.2f}" if name in metrics else "constant difference"
    return f"{loss}{stat}, p={float(metrics[f'{name}_p']):.4f}"


def _champion_reasons(candidate: Mapping[str, float], h: int, policy: GatePolicy) -> list[str]:
    """Candidate vs champion on identical rows: blocks only a significant loss."""
    names = {loss: f"h{h}_dm_{loss}_vs_champion" for loss in CHAMPION_LOSSES}
    p_values = {loss: evidence_p_value(candidate, name) for loss, name in names.items()}
    missing = [f"{names[loss]}_p" for loss, p in p_values.items() if p is None]
    if missing:
        return [f"h={h}: not compared with the champion on the same rows ({', '.join(missing)})"]
    where = (
        "the latest days"
        if candidate.get("champion_compared_on_folds", 0.0) == 0.0
        else "the same folds"
    )
    return [
        f"h={h}: {label} significantly worse than the champion's on {where} "
        f"({_evidence(candidate, names[loss])})"
        for loss, label in CHAMPION_LOSSES.items()
        if _p(candidate, names[loss]) < policy.significance
    ]


def _recent_reasons(candidate: Mapping[str, float], h: int, policy: GatePolicy) -> list[str]:
    """An incremental candidate's coverage on the latest days (nothing when not scored)."""
    names = [f"h{h}_recent_coverage{who}" for who in ("", "_champion")]
    if not any(name in candidate for name in names):
        return []
    missing = [name for name in names if name not in candidate]
    if missing:
        return [f"h={h}: recent window not evaluated ({', '.join(missing)})"]
    coverage, champion_coverage = (float(candidate[n]) for n in names)
    miss, champion_miss = (abs(c - policy.nominal_coverage) for c in (coverage, champion_coverage))
    if miss > champion_miss + policy.recent_coverage_slack:
        return [
            f"h={h}: coverage on the latest days {coverage:.3f} further from "
            f"{policy.nominal_coverage:.2f} than the champion's {champion_coverage:.3f}"
        ]
    return []


def gate_evidence_tags(metrics: Mapping[str, float], horizons: tuple[int, ...]) -> dict[str, str]:
    """The DM statistics and p-values as short version tags (``models list`` shows them).

    Returns:
        ``gate.dm_vs_champion`` and ``gate.dm_vs_ewma_normal`` when measured, e.g.
        ``"h1 pinball DM -0.41 p=0.66, h1 ae identical to the champion: no test"``, and
        ``gate.features`` (the feature test: how much worse the permuted forecasts are, e.g.
        ``"h5 permuted +1.04% p=0.003"``).
    """
    tags = {}
    for against, losses in (("champion", ("pinball", "ae")), ("ewma_normal", ("pinball",))):
        parts = [
            f"h{h} {loss} {_test_figure(metrics, name, REFERENCES[against])}"
            for h in horizons
            for loss in losses
            if evidence_p_value(metrics, name := f"h{h}_dm_{loss}_vs_{against}") is not None
        ]
        if parts:
            tags[f"gate.dm_vs_{against}"] = ", ".join(parts)
    features = [
        f"h{h} permuted {feature_figure(metrics, name)}"
        for h in horizons
        if evidence_p_value(metrics, name := f"h{h}_features_dm") is not None
        and (name + "_rel" in metrics or name + "_identical" in metrics)
    ]
    if features:
        tags["gate.features"] = ", ".join(features)
    return tags


def _test_figure(metrics: Mapping[str, float], name: str, reference: str) -> str:
    """``DM -0.41 p=0.660``, ``identical to the champion: no test`` or ``constant ...``."""
    if metrics.get(f"{name}_identical") == 1.0:
        return f"identical to {reference}: no test"
    stat = f"DM {float(metrics[name]):.2f}" if name in metrics else "constant difference"
    return f"{stat} p={float(metrics[name + '_p']):.3f}"


def _p(metrics: Mapping[str, float], name: str) -> float:
    """The p-value of a test known to be present (identical losses: 1, no evidence)."""
    p = evidence_p_value(metrics, name)
    return 1.0 if p is None else p


# Versions logged before identical losses were named carry the clipped statistic in their tags.
_LEGACY_IDENTICAL = re.compile(r"DM -1000000\.00 p=1\.000")


def readable_evidence(tag: str, reference: str = "the champion") -> str:
    """A DM tag as shown to people: an old clipped ``DM -1000000.00 p=1.000`` reads as what it
    was, identical losses (the tolerance shift made them a constant negative differential)."""
    return _LEGACY_IDENTICAL.sub(f"identical to {reference}: no test", tag)
