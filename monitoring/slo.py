"""The SLOs' multi-window, multi-burn-rate alerts (Google SRE workbook, chapter 5), as data.

For each SLO, recording rules give the share of bad requests (the SLI's errors) over seven
windows; the alerts compare them with the error budget ``1 - target`` times a burn rate. A burn
rate of 1 spends the whole budget in exactly the SLO window; each pair of windows alerts when the
long window has spent a given share of the budget and the short one (1/12 of it) shows it is
still burning, so the alert also resolves soon after the burning stops:

======== ============ ===================== ========= ==========
severity long window  share of the budget   short     burn rate (30-day window)
======== ============ ===================== ========= ==========
page     1h           2%                    5m        14.4
page     6h           5%                    30m       6
ticket   1d           10%                   2h        3
ticket   3d           10%                   6h        1
======== ============ ===================== ========= ==========

The burn rate is ``share * window / long window``, so it follows ``SloConfig.window_days``.
SLIs: availability counts API requests answered with a 5xx as bad; latency counts those slower
than ``latency_seconds``, read from the histogram's bucket of that bound (hence the bucket).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.buckets import LATENCY_BUCKETS
from config.monitoring import SloConfig
from monitoring.alerts import REQUESTS, Alert, Recording, RuleGroup, Severity

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
_HOURS = {"1h": 1, "6h": 6, "1d": 24, "3d": 72}


@dataclass(frozen=True)
class BurnWindow:
    """One pair of windows of a burn-rate alert."""

    severity: Severity
    long: str
    short: str
    budget_share: float

    def burn_rate(self, slo_days: int) -> float:
        """How many times faster than sustainable this pair's long window burns the budget."""
        return round(self.budget_share * slo_days * 24 / _HOURS[self.long], 4)


BURN_WINDOWS = (
    BurnWindow("page", "1h", "5m", 0.02),
    BurnWindow("page", "6h", "30m", 0.05),
    BurnWindow("ticket", "1d", "2h", 0.10),
    BurnWindow("ticket", "3d", "6h", 0.10),
)


def le_label(seconds: float) -> str:
    """A bucket bound as ``prometheus_client`` writes it in ``le`` (3.0 -> "3.0")."""
    return repr(float(seconds))


def sli_errors(slo: SloConfig, window: str) -> dict[str, str]:
    """Each SLI's share of bad requests over ``window``, by SLO name."""
    total = f"sum(rate(bentoml_service_request_total{{{REQUESTS}}}[{window}]))"
    failed = (
        f'sum(rate(bentoml_service_request_total{{{REQUESTS}, http_response_code=~"5.."}}'
        f"[{window}]))"
    )
    histogram = "bentoml_service_request_duration_seconds"
    bound = le_label(slo.latency_seconds)
    fast = f'sum(rate({histogram}_bucket{{{REQUESTS}, le="{bound}"}}[{window}]))'
    count = f"sum(rate({histogram}_count{{{REQUESTS}}}[{window}]))"
    return {
        # With no 5xx yet there is no 5xx series: zero errors, not no data.
        "availability": f"({failed} or vector(0))\n/\n{total}",
        "latency": f"1 - (\n  {fast}\n  /\n  {count}\n)",
    }


def _budget(target: float) -> str:
    return f"{round(1 - target, 10):g}"


def _burn_alert(name: str, sli: str, budget: str, severity: Severity, slo: SloConfig) -> Alert:
    pairs = [w for w in BURN_WINDOWS if w.severity == severity]
    conditions = []
    for pair in pairs:
        factor = f"({pair.burn_rate(slo.window_days):g} * {budget})"
        long_ratio = ERROR_RATIO.format(window=pair.long) + f'{{slo="{sli}"}}'
        short_ratio = ERROR_RATIO.format(window=pair.short) + f'{{slo="{sli}"}}'
        conditions.append(f"(\n  {long_ratio} > {factor}\nand\n  {short_ratio} > {factor}\n)")
    what = "failing (5xx)" if sli == "availability" else f"slower than {slo.latency_seconds:g} s"
    target = slo.availability_target if sli == "availability" else slo.latency_target
    pace = " or ".join(
        f"{p.budget_share:.0%} in {p.long} (burn rate {p.burn_rate(slo.window_days):g})"
        for p in pairs
    )
    shorts = ", ".join(p.short for p in pairs)
    urgency = "fast: act now" if severity == "page" else "steadily: act within a working day"
    return Alert(
        name,
        "\nor\n".join(conditions),
        severity,
        f"The API's {sli} error budget is burning {urgency}",
        f"API requests are {what} fast enough to spend {pace} of the {slo.window_days}-day "
        f"error budget ({1 - target:.2%} of requests, SLO {target:.2%}); the short windows "
        f"({shorts}) show it still burns. Bad share over the long window: "
        "{{ $value | humanizePercentage }}.",
        "Find the failing or slow route and replica: `sum by (replica, endpoint, "
        "http_response_code) (rate(bentoml_service_request_total[5m]))`; after a deploy, "
        "`finsimples rollback`.",
        labels={"slo": sli},
    )


def slo_group(slo: SloConfig) -> RuleGroup:
    """Recording rules of both SLIs over every window, then the page and ticket alerts.

    Raises:
        ValueError: ``slo.latency_seconds`` is not a bucket of the replicas' histogram (the
            latency SLI would read a series that does not exist, and never alert).
    """
    if slo.latency_seconds not in LATENCY_BUCKETS:
        raise ValueError(
            f"slo.latency_seconds {slo.latency_seconds:g}: expected one of the latency "
            f"histogram's buckets {LATENCY_BUCKETS} (config/buckets.py)"
        )
    recordings: list[Alert | Recording] = []
    for sli in ("availability", "latency"):
        for window in WINDOWS:
            expr = sli_errors(slo, window)[sli]
            recordings.append(Recording(ERROR_RATIO.format(window=window), expr, {"slo": sli}))
    budgets = {
        "availability": _budget(slo.availability_target),
        "latency": _budget(slo.latency_target),
    }
    alerts = tuple(
        _burn_alert(name, sli, budgets[sli], severity, slo)
        for sli, name in (
            ("availability", "ApiAvailabilityBudgetBurn"),
            ("latency", "ApiLatencyBudgetBurn"),
        )
        for severity in ("page", "ticket")
    )
    return RuleGroup("finsimples-slo", "slo.yml", (*recordings, *alerts))
