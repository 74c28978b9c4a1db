"""The path median policy against the previous per-horizon one, on the same walk-forward.

Both policies start from the model's raw calibrated quantiles (:class:`UnservedForecaster`: no
median policy, no path repair) and are decided on the forecasts dated before ``split``; both
are then scored on the forecasts from ``split`` on, which neither decision saw (the gate's own
decision uses the very years it scores, which flatters whichever policy chose more per horizon).

- ``per_horizon``: today's policy until this change: the model's median at a horizon where it
  alone beat zero, zero elsewhere (:func:`training.median.per_horizon_sources`), quantiles
  shifted per horizon, no repair;
- ``path``: the served policy: the model's median made monotone, then one decision for the path
  (:func:`training.median.decide_median_source`) and the path repair (:mod:`training.paths`).

Also scored: each decided on the scoring period itself (``..._in_sample``), as the gate does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from training.config import TrainingConfig
from training.forecaster import QuantileForecaster
from training.median import ZERO, decide_median_source, per_horizon_sources, recentre
from training.metrics import score_forecasts
from training.paths import PathRepairs, count_repairs, repair_frame


class UnservedForecaster(QuantileForecaster):
    """The forecaster's raw calibrated quantiles: not sorted, no median policy, no repair."""

    rearrange = False

    def _serve(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(np.sort(frame.to_numpy(), axis=1), index=frame.index, columns=frame.columns)


def _per_horizon(raw: pd.DataFrame, sources: dict[int, str]) -> pd.DataFrame:
    """The previous re-centring: every quantile of a zero horizon shifted so its median is 0."""
    zero = [h for h, s in sources.items() if s == ZERO]
    rows = raw.index.get_level_values("horizon").isin(zero)
    out = raw.copy()
    out.loc[rows] = raw.loc[rows].sub(raw.loc[rows, 0.5], axis=0).to_numpy()
    return out


def serve_per_horizon(
    raw: pd.DataFrame, decide_on: pd.DataFrame, outcomes: pd.Series, significance: float
) -> tuple[pd.DataFrame, dict[int, str]]:
    """The per-horizon policy decided on ``decide_on``, applied to ``raw``."""
    horizons = sorted(raw.index.get_level_values("horizon").unique())
    raw, decide_on = _sorted(raw), _sorted(decide_on)  # it always had the rearrangement
    sources = per_horizon_sources(decide_on, outcomes, horizons, significance)
    return _per_horizon(raw, sources), sources


def serve_path(
    raw: pd.DataFrame, decide_on: pd.DataFrame, outcomes: pd.Series, significance: float
) -> tuple[pd.DataFrame, str]:
    """The path policy decided on ``decide_on`` (raw), applied to ``raw`` as ``predict`` does."""
    horizons = sorted(raw.index.get_level_values("horizon").unique())
    raw, decide_on = _sorted(raw), _sorted(decide_on)  # as make_quantile_frame serves them
    model = repair_frame(recentre(decide_on, {}))
    source, _ = decide_median_source(model, outcomes, horizons, significance)
    return repair_frame(
        recentre(repair_frame(recentre(raw, {})), dict.fromkeys(horizons, source))
    ), source


def compare_median_policies(
    raw: pd.DataFrame,
    outcomes: pd.Series,
    split: pd.Timestamp,
    config: TrainingConfig,
    significance: float = 0.05,
) -> tuple[pd.DataFrame, dict[str, object], PathRepairs]:
    """Score both policies on the forecasts from ``split`` on.

    Args:
        raw: :class:`UnservedForecaster`'s walk-forward forecasts (a quantile frame).
        outcomes: Realized log returns on its index.
        split: First date scored; the held-out decisions see only earlier forecasts.
        config: Gives the headline interval.
        significance: The median policy's DM level (the gate's ``median_significance``).

    Returns:
        ``(scores, decisions, repairs)``: scores indexed by (policy, horizon) with
        ``score_forecasts``' columns; each policy's decision; how often the path repair changed
        the raw scored paths (after the model's median was made monotone).
    """
    dates = raw.index.get_level_values("date")
    before, after = raw.loc[dates < split], raw.loc[dates >= split]
    served: dict[str, pd.DataFrame] = {}
    decisions: dict[str, object] = {}
    for suffix, decide_on in (("", before), ("_in_sample", after)):
        frame, sources = serve_per_horizon(after, decide_on, outcomes, significance)
        served[f"per_horizon{suffix}"] = frame
        decisions[f"per_horizon{suffix}"] = sources
        frame, source = serve_path(after, decide_on, outcomes, significance)
        served[f"path{suffix}"] = frame
        decisions[f"path{suffix}"] = source
    scores = pd.concat(
        {name: score_forecasts(frame, outcomes, config) for name, frame in served.items()},
        names=["policy"],
    )
    # Crossings are counted on the raw quantiles (they come sorted); narrowing after the model's
    # median is made monotone (as served when the policy keeps the model's median).
    crossed = count_repairs(after)
    repairs = count_repairs(recentre(_sorted(after), {}))
    return scores, decisions, replace(repairs, crossed=crossed.crossed)
