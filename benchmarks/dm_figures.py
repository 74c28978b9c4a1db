"""A Diebold-Mariano test's figures in a benchmark's report, read as the gate reads them.

Identical losses store no p-value and no statistic (``training.dm_test.result_metrics``: the
clipped sentinel is gone); the gate reads them as p = 1.0, no evidence either way
(``training.dm_test.evidence_p_value``). A report reading ``..._p`` directly finds nothing there.
"""

from __future__ import annotations

from collections.abc import Mapping

from training.dm_test import evidence_p_value


def dm_figures(metrics: Mapping[str, float], name: str) -> dict:
    """A test's relative loss and p-value, read as the gate reads them.

    Identical losses store no p-value (``training.dm_test.result_metrics``); the gate reads them
    as 1.0 (no evidence either way, ``evidence_p_value``), and so does this report, flagging
    them. ``p`` is None when the test was not run.
    """
    return {
        "rel": metrics.get(f"{name}_rel"),
        "p": evidence_p_value(metrics, name),
        "identical": metrics.get(f"{name}_identical") == 1.0,
    }


def dm_text(test: dict) -> str:
    """``+0.12% p=0.345``, ``identical: no test`` or ``not run``."""
    if test["identical"]:
        return "identical: no test"
    if test["p"] is None:
        return "not run"
    rel = "" if test["rel"] is None else f"{test['rel']:+.2%} "
    return f"{rel}p={test['p']:.3f}"
