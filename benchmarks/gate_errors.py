"""How often does the gate err? False blocks of look-alike candidates, misses of broken ones.

Run: ``python -m benchmarks.gate_errors [--trials N]`` (a few minutes on two cores).

On the bundled sample (six tickers, 2005 to 2022-11-30, the small config of the tests), a
champion is fitted and candidates are compared with it on the same latest rows with known
outcomes by the train job's own refit-path functions (``jobs.evidence``:
``versus_champion_recent``, Diebold-Mariano on pinball and absolute error, and
``feature_evidence``), judged by ``registry.gate``:

* false blocks: the same configuration with another seed and a training window shifted by up to
  two months, judged against the champion, with the roles swapped, and against the previous
  look-alike (one champion is one draw); goal at most 5%;
* misses: features shuffled across rows, one quantile head swapped (the 0.25 and 0.75 outputs),
  a leakage feature (the next day's return); goal 0%, each caught by its own reason: the shuffle
  by the feature test (``training.permutation``: the candidate against itself with its
  non-volatility features permuted, on the latest ``calibration_days`` rows, as the train job
  runs it for every candidate), the swapped heads by the loss comparison with the champion, the
  leak by the walk-forward's tripwire.

Every candidate, look-alikes included, gets the feature test, so false blocks count it too.

Prints a table and writes ``.finsimples/bench/gate_errors.json``.

``--walk-forward`` instead asks whether the train job's own two-year walk-forward checks (held
"passed" above) catch the shuffled-features candidate: for it (the same three shuffles and seeds)
and for honest candidates of the same configuration, ``jobs.evidence.walk_forward``
(what ``train --full`` runs) gives the calibration and DM-vs-EWMA-normal metrics, and
``evaluate_gate`` judges them together with the comparison with the champion on the latest days.
Writes ``.finsimples/bench/gate_errors_walk_forward.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import weakref
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from benchmarks.dm_figures import dm_figures, dm_text
from config.gate import GatePolicy
from finsimples.settings import Settings
from jobs import evidence
from registry.gate import GateVerdict, evaluate_gate
from training.boosting import BoosterFit, fit_in_process
from training.config import BoosterParams, TrainingConfig
from training.evaluation import Factory, default_methods, run_backtest
from training.features import build_features
from training.forecaster import QuantileForecaster

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sp500_prices.csv.gz"
TICKERS = ["AAPL", "JNJ", "KO", "XOM", "JPM", "WMT"]
LAST = pd.Timestamp("2022-11-30")
CONFIG = TrainingConfig(
    anchor_horizons=(1, 5, 30),
    calibration_days=252,
    booster=BoosterParams(n_estimators=20, max_depth=2, n_jobs=2),
    eval_horizons=(1, 5),
)
RECENT_DAYS = 126
CHAMPION_REASON = "worse than the champion's"
FEATURE_REASON = "the features carry no information"


class SwappedHead(QuantileForecaster):
    """Broken: the 0.25 and 0.75 quantile heads swapped."""

    def _raw(self, features: pd.DataFrame) -> np.ndarray:
        raw = super()._raw(features)
        return raw[:, :, [0, 3, 2, 1, 4]]


class ShuffledFit(QuantileForecaster):
    """Broken: trained on the rows of a shuffled feature frame, served on the real features.

    Every refit of a walk-forward trains on ``shuffled`` at its own training rows (the
    benchmark's permutation of the whole frame), so its last fit is the benchmark's candidate.
    """

    def __init__(self, config: TrainingConfig, shuffled: pd.DataFrame) -> None:
        super().__init__(config)
        self.shuffled = shuffled

    def fit(
        self, features: pd.DataFrame, prices: pd.DataFrame, *, engine: BoosterFit = fit_in_process
    ) -> QuantileForecaster:
        return super().fit(self.shuffled.reindex(features.index), prices, engine=engine)


def load_prices() -> pd.DataFrame:
    """The six tickers from 2005, long format."""
    wide = pd.read_csv(SAMPLE, parse_dates=["Date"])
    wide = wide.loc[(wide["Date"] >= "2005-01-01") & (wide["Date"] <= LAST), ["Date", *TICKERS]]
    long = wide.melt(id_vars="Date", var_name="ticker", value_name="adj_close").dropna()
    return long.rename(columns={"Date": "date"}).reset_index(drop=True)


def seeded(seed: int) -> TrainingConfig:
    return CONFIG.model_copy(update={"booster": CONFIG.booster.model_copy(update={"seed": seed})})


def fit(
    model: QuantileForecaster, features: pd.DataFrame, prices: pd.DataFrame, end: pd.Timestamp
) -> QuantileForecaster:
    dates = features.index.get_level_values("date")
    return model.fit(features.loc[dates <= end], prices.loc[prices["date"] <= end])


def champion_verdict(
    candidate: QuantileForecaster,
    champion: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    policy: GatePolicy,
) -> tuple[GateVerdict, dict[str, float]]:
    """The refit path's verdict: both models on the same latest rows, DM vs the champion."""
    metrics = champion_metrics(candidate, champion, features, prices, policy)
    metrics |= feature_metrics(candidate, features, prices, policy)
    # Calibration and the EWMA check come from the walk-forward: passed here by construction,
    # so the verdict isolates the champion comparison.
    for h in policy.horizons:
        metrics |= {
            f"h{h}_coverage": 0.9,
            f"h{h}_coverage_worst_year": 0.9,
            f"h{h}_coverage_worst_ticker": 0.9,
            f"h{h}_dm_pinball_vs_ewma_normal": 0.0,
            f"h{h}_dm_pinball_vs_ewma_normal_p": 0.5,
        }
    return evaluate_gate(metrics, {}, policy), metrics


def gate_settings(policy: GatePolicy) -> Settings:
    """The train job's settings for the benchmark's config, policy and latest days."""
    return Settings(training=CONFIG, gate=policy, gate_recent_days=RECENT_DAYS)


def champion_metrics(
    candidate: QuantileForecaster,
    champion: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
    policy: GatePolicy,
) -> dict[str, float]:
    """The train job's comparison with the champion on the latest ``RECENT_DAYS`` rows."""
    return evidence.versus_champion_recent(
        candidate, champion, features, prices, gate_settings(policy)
    )


_FEATURE_TESTS: weakref.WeakKeyDictionary[QuantileForecaster, dict[str, float]] = (
    weakref.WeakKeyDictionary()
)


def feature_metrics(
    model: QuantileForecaster, features: pd.DataFrame, prices: pd.DataFrame, policy: GatePolicy
) -> dict[str, float]:
    """The train job's feature test (``h{h}_features_dm*``), once per fitted model.

    Scored on the latest ``calibration_days`` rows, as the train job does: the boosters of every
    model here stopped before them.
    """
    if model not in _FEATURE_TESTS:
        _FEATURE_TESTS[model] = evidence.feature_evidence(
            model, features, prices, gate_settings(policy)
        )
    return _FEATURE_TESTS[model]


def walk_forward_verdict(
    factory: Factory,
    config: TrainingConfig,
    fitted: QuantileForecaster,
    champion: QuantileForecaster,
    features: pd.DataFrame,
    prices: pd.DataFrame,
) -> tuple[GateVerdict, dict[str, float]]:
    """The full refit's gate with its real checks: the train job's walk-forward, then the champion.

    ``evidence.walk_forward`` is the train job's own (two years, model / EWMA-normal / zero,
    median policy, DM vs EWMA-normal); only the model's factory is swapped in, so a broken
    candidate is walked forward as itself. ``fitted`` (the same candidate fitted before the
    latest days) is compared with the champion there, as in :func:`champion_verdict`.
    """
    settings = Settings(training=config)
    methods = default_methods() | {"model": factory}
    with mock.patch.object(evidence, "default_methods", return_value=methods):
        wf = evidence.walk_forward(prices, features, settings)
    metrics = wf.metrics | champion_metrics(fitted, champion, features, prices, settings.gate)
    metrics |= feature_metrics(fitted, features, prices, settings.gate)
    return evaluate_gate(metrics, {}, settings.gate), metrics


def run_walk_forward(broken: int, honest: int) -> None:
    """``--walk-forward``: would the walk-forward checks block the shuffled-features candidate?"""
    policy = GatePolicy()
    began = time.perf_counter()
    prices = load_prices()
    features = build_features(prices)
    dates = features.index.get_level_values("date").unique().sort_values()
    end = dates[-RECENT_DAYS - 1]
    champion = fit(QuantileForecaster(seeded(0)), features, prices, end)
    rows = []
    rng = np.random.default_rng(0)  # the same shuffles as main(): one permutation per candidate
    for i in range(broken):
        shuffled = features.copy()
        shuffled.loc[:, :] = shuffled.to_numpy()[rng.permutation(len(shuffled))]
        config = seeded(100 + i)
        fitted = fit(QuantileForecaster(config), shuffled, prices, end)
        verdict, m = walk_forward_verdict(
            lambda c, s=shuffled: ShuffledFit(c, s), config, fitted, champion, features, prices
        )
        rows.append(_wf_row("shuffled features", 100 + i, verdict, m, policy))
    for i in range(honest):
        config = seeded(1 + i)
        fitted = fit(QuantileForecaster(config), features, prices, end)
        verdict, m = walk_forward_verdict(
            QuantileForecaster, config, fitted, champion, features, prices
        )
        rows.append(_wf_row("honest (control)", 1 + i, verdict, m, policy))
    seconds = round(time.perf_counter() - began, 1)
    out = Path(".finsimples/bench/gate_errors_walk_forward.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds": seconds, "rows": rows}, indent=2, default=str))
    print(f"wrote {out} in {seconds} s")


WALK_FORWARD_TESTS = {
    "dm_pinball_vs_ewma_normal": "vs EWMA-normal",
    "dm_pinball_vs_champion": "vs champion",
    "features_dm": "features permuted",
}
"""The tests a walk-forward row reports, with their printed labels."""


def _wf_row(
    kind: str, seed: int, verdict: GateVerdict, m: dict[str, float], policy: GatePolicy
) -> dict:
    """Print and return one candidate's walk-forward evidence and verdict."""
    row: dict = {"kind": kind, "seed": seed, "blocked": not verdict.passed}
    print(f"{kind}, seed {seed}:")
    for h in policy.horizons:
        figures = {
            name: m.get(f"h{h}_{name}")
            for name in ("coverage", "coverage_worst_year", "coverage_worst_ticker", "pinball_gain")
        }
        tests = {name: dm_figures(m, f"h{h}_{name}") for name in WALK_FORWARD_TESTS}
        row |= {f"h{h}_{k}": v for k, v in figures.items()}
        row |= {f"h{h}_{name}_{k}": v for name, test in tests.items() for k, v in test.items()}
        print(
            f"  h={h}: coverage {figures['coverage']:.3f} (worst year "
            f"{figures['coverage_worst_year']:.3f}, worst ticker "
            f"{figures['coverage_worst_ticker']:.3f}); pinball "
            + "; ".join(f"{WALK_FORWARD_TESTS[n]} {dm_text(t)}" for n, t in tests.items())
        )
    print(f"  verdict: {verdict.summary()}", flush=True)
    return row | {"reasons": list(verdict.reasons)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="look-alike candidates")
    parser.add_argument("--broken", type=int, default=3, help="candidates per broken kind")
    parser.add_argument(
        "--walk-forward",
        action="store_true",
        help="judge the shuffled-features candidate (--broken of them) and --honest honest ones "
        "with the train job's two-year walk-forward checks, not held as passed",
    )
    parser.add_argument("--honest", type=int, default=2, help="honest controls (--walk-forward)")
    args = parser.parse_args()
    if args.walk_forward:
        run_walk_forward(args.broken, args.honest)
        return
    policy = GatePolicy()
    began = time.perf_counter()
    prices = load_prices()
    features = build_features(prices)
    dates = features.index.get_level_values("date").unique().sort_values()
    end = dates[-RECENT_DAYS - 1]  # the champion never saw the scored rows
    champion = fit(QuantileForecaster(seeded(0)), features, prices, end)

    rows = []
    previous = None
    for trial in range(args.trials):
        shift = dates[-RECENT_DAYS - 1 - 2 * trial]  # up to ~2 months earlier
        candidate = fit(QuantileForecaster(seeded(trial + 1)), features, prices, shift)
        # One champion is one draw: a weak one flatters every look-alike. So each fitted pair
        # is judged in both roles, and consecutive look-alikes are judged against each other.
        pairs = [
            ("look-alike", candidate, champion),
            ("look-alike, roles swapped", champion, candidate),
        ]
        if previous is not None:
            pairs.append(("look-alike vs look-alike", candidate, previous))
        for kind, cand, champ in pairs:
            verdict, m = champion_verdict(cand, champ, features, prices, policy)
            rows.append({"kind": kind, "blocked": not verdict.passed, **_row(verdict, m)})
            print(f"{kind} {trial}: {verdict.summary()[:120]}", flush=True)
        previous = candidate

    rng = np.random.default_rng(0)
    for i in range(args.broken):
        shuffled = features.copy()
        shuffled.loc[:, :] = shuffled.to_numpy()[rng.permutation(len(shuffled))]
        broken = fit(QuantileForecaster(seeded(100 + i)), shuffled, prices, end)
        verdict, m = champion_verdict(broken, champion, features, prices, policy)
        rows.append(_broken("shuffled features", verdict, FEATURE_REASON, m))
        swapped = fit(SwappedHead(seeded(200 + i)), features, prices, end)
        verdict, m = champion_verdict(swapped, champion, features, prices, policy)
        rows.append(_broken("swapped quantile head", verdict, CHAMPION_REASON, m))
        rows.append(_leak(features, prices, i))
        print(f"broken set {i}: {[r['caught'] for r in rows[-3:]]}", flush=True)

    frame = pd.DataFrame(rows)
    alike = frame.kind.str.startswith("look-alike")
    look = frame[frame.kind == "look-alike"]
    misses = {str(name): float(1 - g.caught.mean()) for name, g in frame[~alike].groupby("kind")}
    summary = {
        "trials": len(look),
        "false_block_rate": float(look.blocked.mean()),
        "false_block_rates": {
            name: float(g.blocked.mean()) for name, g in frame[alike].groupby("kind")
        },
        "misses": misses,
        "policy": policy.model_dump(),
        "seconds": round(time.perf_counter() - began, 1),
        "rows": rows,
    }
    print()
    for name, g in frame[alike].groupby("kind"):
        print(
            f"false blocks, {name!s}: {int(g.blocked.sum())}/{len(g)} = {g.blocked.mean():.1%}"
            " (goal <= 5%)"
        )
    for name, rate in misses.items():
        print(f"misses, {name}: {rate:.0%} (goal 0%, right reason)")
    out = Path(".finsimples/bench/gate_errors.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"wrote {out} in {summary['seconds']} s")


def _row(verdict: GateVerdict, metrics: dict[str, float]) -> dict:
    """The reasons and the DM evidence vs the champion (relative loss, p-value, identical)."""
    evidence = {
        f"h{h}_{loss}_{part}": value
        for h in (1, 5)
        for loss in ("pinball", "ae")
        for part, value in dm_figures(metrics, f"h{h}_dm_{loss}_vs_champion").items()
    }
    evidence |= {
        f"h{h}_features_{part}": value
        for h in (1, 5)
        for part, value in dm_figures(metrics, f"h{h}_features_dm").items()
    }
    return {"reasons": list(verdict.reasons), **evidence}


def _broken(kind: str, verdict: GateVerdict, reason: str, metrics: dict[str, float]) -> dict:
    caught = not verdict.passed and any(reason in r for r in verdict.reasons)
    return {"kind": kind, "caught": caught, **_row(verdict, metrics)}


def _leak(features: pd.DataFrame, prices: pd.DataFrame, i: int) -> dict:
    """A feature holding tomorrow's return: the walk-forward's tripwire must catch it."""
    wide = prices.pivot(index="date", columns="ticker", values="adj_close")
    future = pd.Series(wide.shift(-1).div(wide).apply(np.log).stack(), name="leak")
    leaked = features.join(future.reindex(features.index).fillna(0.0))
    config = seeded(300 + i)
    backtest = run_backtest(
        prices, config, "2022-01-01", methods={"model": QuantileForecaster}, features=leaked
    )
    tripped = backtest.leakage.get(f"model_{config.calibration}", [])
    return {"kind": "leakage feature", "caught": bool(tripped), "reasons": tripped}


if __name__ == "__main__":
    main()
