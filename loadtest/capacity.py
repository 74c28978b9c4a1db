"""The capacity and cost plan, computed from a load test's measured figures.

``python -m loadtest.capacity --run SEED/summary.json --stress STRESS/summary.json`` prints the
tables of ``docs/capacity.md``. Measured (from the summaries): CPU per request, a replica's
memory, the forecast cache hit rate, LLM calls per forecast, the request rate a replica
sustains within the SLA (the stress knee over the replicas). Assumed (the plan's usage and the
prices, dated, in :class:`Usage` and :class:`Prices`): everything about money and investors.

The model, per number of investors:

- peak calls per second = investors x forecasts per investor a day x the peak hour's share
  of the day / 3600, over the forecasts' share of the calls (the rest: ticker lists, cards);
- replicas = the largest of: the plan's 3 (one per VM, so one VM can fail), CPU at peak over
  the HPA's 70% of a replica's 1-core request, and the peak rate over 70% of a replica's
  measured rate within the SLA;
- cache hits: an entry lives TTL seconds from the miss that stored it (a hit does not extend
  it), so a key (ticker, horizon, locale; the load test's mix: Zipf tickers, the horizon and
  locale shares) asked at rate r_k goes through cycles of one miss and, on average, r_k TTL
  hits (Poisson arrivals): its hit rate is r_k TTL / (1 + r_k TTL), the whole cache's
  sum_k p_k r_k TTL / (1 + r_k TTL);
- LLM calls: a narrative is cached 24 h per (model version, data date, ticker, horizon,
  locale), so a day costs one call per distinct key asked that day: sum_k (1 - (1 - p_k)^n)
  for n forecasts a day, times 30 days.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.traffic import HORIZONS, LOCALES, zipf_weights

INVESTORS = (50, 500, 5_000, 50_000)
HPA_TARGET = 0.70  # config/stack.py autoscale_cpu_percent, the HPA's target
CPU_REQUEST_CORES = 1.0  # deploy/k8s/base/deployment.yaml: a replica's CPU request
MIN_REPLICAS = 3


@dataclass(frozen=True)
class Usage:
    """The plan's usage per investor (assumed, from the scalability plan)."""

    forecasts_per_investor_day: float = 10.0  # 50 investors, ~500 forecasts a day
    peak_hour_share: float = 0.20  # peaks of 100 an hour out of 500 a day
    forecast_share_of_calls: float = 0.93  # the load test's mix: cards and lists beside
    tickers: int = 20  # the universe investors ask about (the bundled sample's)
    forecast_ttl_seconds: float = 300.0  # Settings.cache_ttl_seconds


@dataclass(frozen=True)
class Prices:
    """Monthly prices in BRL: the plan's budget lines, and an LLM price list (assumed, dated)."""

    dated: str = "plan lines as written; LLM list price of gpt-4o-mini as of 2024-07, USD/BRL 5.50"
    vm: float = 800 / 3  # the plan: 3 VMs for R$ 800
    redis: float = 200.0
    storage_network: float = 300.0
    llm_budget: float = 1200.0
    usd_brl: float = 5.50
    input_usd_per_mtok: float = 0.15
    output_usd_per_mtok: float = 0.60


@dataclass(frozen=True)
class Measured:
    """What the load test measured."""

    cpu_seconds_per_request: float
    replica_rate: float  # requests/s one replica sustains within the SLA
    rss_mib: float
    forecast_cache_hit_rate: float
    llm_calls_per_forecast: float | None  # None: no LLM in the run
    forecast_rate: float  # forecasts/s of the steady run (its whole length)
    forecasts: int  # forecasts answered in the LLM run (or the steady run)
    prompt_tokens: float
    output_tokens: float

    @classmethod
    def from_summaries(
        cls,
        run: dict[str, Any],
        stress: dict[str, Any],
        prompt_tokens: float,
        output_tokens: float,
        llm_run: dict[str, Any] | None = None,
    ) -> Measured:
        """From the ``summary.json`` of a steady run (cache, memory), of a stress run (the
        knee, and the CPU per request: at a steady run's low rate the replicas' idle baseline
        dominates), and of a run with an LLM configured (default: the steady run)."""
        knee = max((s["rate"] for s in stress["steps"] if s["passed"]), default=0.0)
        replicas = max(1, len(stress["replicas"]))
        sources = run["sources"]
        answered = sum(sources.get(s, 0) for s in ("fresh", "cache", "fallback"))
        calls = (llm_run or run).get("llm_calls_per_1000_forecasts")
        return cls(
            cpu_seconds_per_request=cpu_per_request(stress),
            replica_rate=knee / replicas,
            rss_mib=max(r["max_rss_mib"] or 0 for r in run["replicas"].values()),
            forecast_cache_hit_rate=sources.get("cache", 0) / answered,
            llm_calls_per_forecast=None if calls is None else calls / 1000,
            forecast_rate=answered / float(run["seconds"]),
            forecasts=sum((llm_run or run)["sources"].values()),
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
        )


def cpu_per_request(run: dict[str, Any]) -> float:
    """CPU seconds per request of a run: its own figure, or each replica's mean CPU over the
    run's length (summaries written before ``cpu_ms_per_request`` existed)."""
    if run.get("cpu_ms_per_request"):
        return float(run["cpu_ms_per_request"]) / 1000
    cores = sum((r["mean_cpu_percent"] or 0) / 100 for r in run["replicas"].values())
    return cores * float(run["seconds"]) / int(run["requests"])


@dataclass(frozen=True)
class SizePlan:
    """What one size needs."""

    investors: int
    peak_rate: float  # calls/s
    cpu_cores: float  # at peak
    replicas: int
    bound_by: str
    llm_calls_month: float
    peak_hit_rate: float  # forecast cache: at the peak hour's rate (a day's for a TTL > 1 h)
    cost: dict[str, float]

    @property
    def total(self) -> float:
        """The month's total, BRL."""
        return sum(self.cost.values())


def key_probabilities(tickers: int) -> list[float]:
    """Each (ticker, horizon, locale) key's share of the forecasts, in the load test's mix."""
    return [
        t * h * loc
        for t in zipf_weights(tickers)
        for h in HORIZONS.values()
        for loc in LOCALES.values()
    ]


def expected_hit_rate(rate: float, ttl: float, probabilities: list[float]) -> float:
    """The cache hit rate at ``rate`` forecasts/s with entries kept ``ttl`` seconds."""
    return sum(p * (rate * p * ttl) / (1 + rate * p * ttl) for p in probabilities)


def distinct_keys(forecasts: float, probabilities: list[float]) -> float:
    """Expected distinct keys among ``forecasts`` draws: the day's LLM calls."""
    return sum(1 - (1 - p) ** forecasts for p in probabilities)


def llm_call_brl(measured: Measured, prices: Prices) -> float:
    """One narration's price."""
    usd = (
        measured.prompt_tokens * prices.input_usd_per_mtok
        + measured.output_tokens * prices.output_usd_per_mtok
    ) / 1e6
    return usd * prices.usd_brl


def plan_size(investors: int, measured: Measured, usage: Usage, prices: Prices) -> SizePlan:
    """Replicas and monthly cost for ``investors``."""
    forecasts_day = investors * usage.forecasts_per_investor_day
    rate = forecasts_day * usage.peak_hour_share / 3600 / usage.forecast_share_of_calls
    cores = rate * measured.cpu_seconds_per_request
    by_cpu = math.ceil(cores / (HPA_TARGET * CPU_REQUEST_CORES))
    by_rate = math.ceil(rate / (HPA_TARGET * measured.replica_rate)) if measured.replica_rate else 0
    replicas = max(MIN_REPLICAS, by_cpu, by_rate)
    bound = "HA minimum" if replicas == MIN_REPLICAS else ("CPU" if by_cpu >= by_rate else "rate")
    probabilities = key_probabilities(usage.tickers)
    calls = 30 * distinct_keys(forecasts_day, probabilities)
    if usage.forecast_ttl_seconds >= 86_400:
        # Keys hold the data date, so entries rotate daily: one miss per distinct key a day.
        peak_hits = 1 - distinct_keys(forecasts_day, probabilities) / forecasts_day
    else:
        # An entry that outlives the peak hour sees the day's mean traffic, not the peak's.
        seen = rate * usage.forecast_share_of_calls
        if usage.forecast_ttl_seconds > 3600:
            seen = forecasts_day / 86_400
        peak_hits = expected_hit_rate(seen, usage.forecast_ttl_seconds, probabilities)
    cost = {
        "VMs": replicas * prices.vm,
        "Redis": prices.redis,
        "LLM": calls * llm_call_brl(measured, prices),
        "storage and network": prices.storage_network,
    }
    return SizePlan(investors, rate, cores, replicas, bound, calls, peak_hits, cost)


def hpa_rate(measured: Measured, replicas: int = MIN_REPLICAS) -> float:
    """Calls/s at which ``replicas`` reach the HPA's 70% CPU target (it adds one past this)."""
    return replicas * HPA_TARGET * CPU_REQUEST_CORES / measured.cpu_seconds_per_request


def render(measured: Measured, usage: Usage, prices: Prices) -> str:
    """The capacity tables, in Markdown."""
    rows = [
        "| investors | peak calls/s | forecast cache hits | CPU at peak (cores) | "
        "replicas (bound by) | LLM calls/month | VMs | Redis | LLM | storage+network | "
        "total R$/month |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for investors in INVESTORS:
        size = plan_size(investors, measured, usage, prices)
        c = size.cost
        rows.append(
            f"| {investors:,} | {size.peak_rate:.3f} | {size.peak_hit_rate:.0%} | "
            f"{size.cpu_cores:.4f} | "
            f"{size.replicas} ({size.bound_by}) | {size.llm_calls_month:,.0f} | "
            f"{c['VMs']:,.0f} | {c['Redis']:,.0f} | {c['LLM']:,.2f} | "
            f"{c['storage and network']:,.0f} | {size.total:,.0f} |"
        )
    per_call = llm_call_brl(measured, prices)
    probabilities = key_probabilities(usage.tickers)
    model_hits = expected_hit_rate(
        measured.forecast_rate, usage.forecast_ttl_seconds, probabilities
    )
    checks = [
        f"Model check, cache: at the run's {measured.forecast_rate:.2f} forecasts/s the model "
        f"expects {model_hits:.1%} hits, the run measured {measured.forecast_cache_hit_rate:.1%} "
        "(the model is the steady state; the run starts cold)."
    ]
    if measured.llm_calls_per_forecast is not None:
        expected = distinct_keys(measured.forecasts, probabilities) / measured.forecasts
        checks.append(
            f"Model check, LLM: over the run's {measured.forecasts:,} forecasts the model "
            f"expects {1000 * expected:.1f} calls per 1,000, the run measured "
            f"{1000 * measured.llm_calls_per_forecast:.1f}."
        )
    lines = [
        *checks,
        f"CPU per request {1000 * measured.cpu_seconds_per_request:.2f} ms; a replica within "
        f"the SLA {measured.replica_rate:.0f} calls/s; RSS {measured.rss_mib:.0f} MiB; forecast "
        f"cache hit rate {measured.forecast_cache_hit_rate:.1%}.",
        f"HPA: 3 replicas reach 70% of their 1-core requests at {hpa_rate(measured):,.0f} "
        "calls/s; it adds a replica past that.",
        f"One narration: {measured.prompt_tokens:.0f} + {measured.output_tokens:.0f} tokens = "
        f"R$ {per_call:.5f}; R$ {1000 * per_call:.3f} per 1,000 narrations; the plan's "
        f"R$ {prices.llm_budget:,.0f} buys {prices.llm_budget / per_call:,.0f} a month.",
        "",
        *rows,
    ]
    return "\n".join(lines)


def main() -> None:
    """Print the capacity tables from two load test summaries."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.capacity", description=__doc__)
    parser.add_argument("--run", type=Path, required=True, help="summary.json of a steady run")
    parser.add_argument("--stress", type=Path, required=True, help="summary.json of a stress run")
    parser.add_argument("--llm-run", type=Path, help="summary.json of a run with an LLM")
    parser.add_argument("--prompt-tokens", type=float, default=400.0, help="per narration")
    parser.add_argument("--output-tokens", type=float, default=120.0, help="per narration")
    parser.add_argument("--tickers", type=int, default=Usage().tickers, help="tickers asked about")
    parser.add_argument(
        "--forecast-ttl",
        type=float,
        default=Usage().forecast_ttl_seconds,
        help="forecast cache TTL, seconds (FINSIMPLES_CACHE_TTL_SECONDS)",
    )
    args = parser.parse_args()
    run = json.loads(args.run.read_text())
    stress = json.loads(args.stress.read_text())
    llm_run = json.loads(args.llm_run.read_text()) if args.llm_run else None
    measured = Measured.from_summaries(run, stress, args.prompt_tokens, args.output_tokens, llm_run)
    usage = Usage(tickers=args.tickers, forecast_ttl_seconds=args.forecast_ttl)
    print(render(measured, usage, Prices()))


if __name__ == "__main__":
    main()
