"""Training engines: where the boosters are fitted (``Settings.training_engine``).

``local`` fits in the training process (:func:`training.boosting.fit_in_process`); ``dask``
fits on a Dask cluster with ``xgboost.dask``: the design matrix is split into one row block
per worker, scattered to the workers, and one distributed ``hist`` training runs over them.
Everything else (features, labels, parameters, conformal calibration, ACI, prediction) stays in
the training process, and the booster that comes back is a plain ``xgboost.Booster``, so the
fitted forecaster, the registry, serving and the gate are the same whichever engine ran.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost as xgb

from finsimples.settings import Settings
from training.boosting import BoosterFit, fit_in_process

if TYPE_CHECKING:  # imported when a Dask engine is opened, not by every training run
    from distributed import Client


@dataclass(frozen=True)
class DaskBoosterFit:
    """A :class:`training.boosting.BoosterFit` running ``xgboost.dask.train`` on ``client``.

    Attributes:
        client: A connected ``distributed.Client``.
    """

    client: Client

    def __call__(
        self,
        params: dict[str, Any],
        design: np.ndarray,
        labels: np.ndarray,
        rounds: int,
        previous: xgb.Booster | None,
    ) -> xgb.Booster:
        """Fit on the cluster; the same objective, quantiles and parameters as in process."""
        import dask.array as da
        from xgboost import dask as dxgb

        workers = self.workers()
        blocks = row_blocks(len(design), len(workers))
        # Block i (its features and its labels) goes to worker i: one contiguous share each.
        placed = list(zip(blocks, workers, strict=False))
        parts = [self.client.scatter(design[a:b], workers=[w]) for (a, b), w in placed]
        targets = [self.client.scatter(labels[a:b], workers=[w]) for (a, b), w in placed]
        x = da.concatenate(
            [
                da.from_delayed(part, shape=(b - a, design.shape[1]), dtype=design.dtype)
                for part, (a, b) in zip(parts, blocks, strict=True)
            ]
        )
        y = da.concatenate(
            [
                da.from_delayed(part, shape=(b - a,), dtype=labels.dtype)
                for part, (a, b) in zip(targets, blocks, strict=True)
            ]
        )
        # Each worker trains with its own thread count (nthread would override it everywhere).
        cluster_params = {k: v for k, v in params.items() if k != "nthread"}
        # xgboost.dask looks up the "current" client even when given one: ours, for this call
        # only (set_as_default=False keeps it from becoming the process's global client).
        with self.client.as_current():
            data = dxgb.DaskQuantileDMatrix(self.client, x, y, max_bin=params["max_bin"])
            result = dxgb.train(
                self.client, cluster_params, data, num_boost_round=rounds, xgb_model=previous
            )
        return result["booster"]

    def workers(self) -> list[str]:
        """The addresses of the cluster's workers (at least one, or the fit cannot run)."""
        info = self.client.scheduler_info(n_workers=-1)
        if not info["workers"]:
            raise RuntimeError(f"the Dask cluster at {info['address']} has no workers")
        return sorted(info["workers"])


def row_blocks(rows: int, count: int) -> list[tuple[int, int]]:
    """``[start, end)`` bounds of at most ``count`` contiguous, non-empty, near-equal blocks."""
    if rows < 1:
        raise ValueError("no rows to split")
    size = math.ceil(rows / max(1, min(count, rows)))
    return [(start, min(start + size, rows)) for start in range(0, rows, size)]


@contextmanager
def training_engine(settings: Settings) -> Iterator[BoosterFit]:
    """The engine ``settings`` selects; with Dask, a client connected for the block's duration.

    Raises:
        OSError: the scheduler at ``dask_scheduler`` did not answer (``distributed``'s timeout).
    """
    if settings.training_engine == "local":
        yield fit_in_process
        return
    from distributed import Client

    with Client(settings.dask_scheduler, set_as_default=False) as client:
        yield DaskBoosterFit(client)
