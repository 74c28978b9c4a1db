"""The deploy hook flow: what follows a promotion (and what ``finsimples deploy`` runs).

1. the new version reaches the servers. With a local stack running (``finsimples stack up``),
   a rolling deploy replaces each replica with one serving the new version, warms it, and
   removes the old version's answers from Redis (``deploy.rolling``). Without one, the
   prediction cache step alone: the old version's answers dropped, the new version's warmed
   for the most requested tickers (``bentos.deploy_hook.invalidate_and_warm``; keys carry the
   model version, so replicas never mix versions even before this step);
2. the drift check of the new champion (``flows.drift``, without its retrain trigger);
3. a deploy record: JSON in the lake under ``reports/deploys/`` and tags on the version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from bentos.deploy_hook import DeployCacheReport, invalidate_and_warm
from finsimples.jobs.common import open_registry
from finsimples.lake import Lake
from finsimples.settings import Settings
from flows.drift import DriftSummary, drift_flow
from flows.io import io_task, with_retries

DEPLOYS_DIR = "reports/deploys"


@dataclass(frozen=True)
class DeployRecord:
    """What the deploy hook did for one promotion."""

    new_version: str
    old_version: str | None
    removed: int
    warmed: int
    drift_detected: bool | None  # None: the drift check failed (see drift_report)
    drift_report: str  # the report's path, or why the check failed
    record_path: str = ""
    rollout: dict[str, Any] | None = None  # the rolling deploy's report, when a stack ran

    @property
    def message(self) -> str:
        """One line for logs and the CLI."""
        drift = {True: "drift detected", False: "no drift", None: "drift check failed"}[
            self.drift_detected
        ]
        rolled = ""
        if self.rollout is not None:
            rolled = (
                f"{len(self.rollout['replicas'])} replicas rolled in "
                f"{self.rollout['seconds']:.1f} s ({self.rollout['requests']} requests served "
                f"meanwhile, {self.rollout['errors']} errors); "
            )
        return (
            f"v{self.old_version} -> v{self.new_version}: {rolled}{self.removed} cached answers "
            f"removed, {self.warmed} warmed; {drift} ({self.drift_report})"
        )


@io_task
def refresh_cache(settings: Settings, old: str | None, new: str) -> DeployCacheReport:
    """Invalidate the old version's cached answers; warm the new one's for the popular tickers."""
    return invalidate_and_warm(settings, old, new)


@task(cache_policy=NO_CACHE)
def roll_replicas(settings: Settings, new: str) -> dict[str, Any]:
    """Rolling deploy of version ``new`` on the running stack (not retried: it undoes itself)."""
    from deploy.rolling import RollingDeploy
    from deploy.stack import Stack

    log = get_run_logger()
    report = RollingDeploy(Stack.of(settings), Path.cwd(), progress=log.info).run(new)
    return report.as_dict()


@io_task
def record(settings: Settings, deploy: DeployRecord) -> str:
    """Keep the deploy record in the lake and on the new version's tags; the record's path."""
    now = datetime.now(UTC)
    location = Lake.from_settings(settings).location
    path = location.path(DEPLOYS_DIR, f"{now:%Y%m%dT%H%M%SZ}-v{deploy.new_version}.json")
    body = {**asdict(deploy), "record_path": path, "recorded_at": now.isoformat()}
    location.write_bytes(path, json.dumps(body, indent=2).encode())
    client = open_registry(settings).client
    tags = {
        "deployed_at": now.isoformat(timespec="seconds"),
        "deploy_cache": f"removed {deploy.removed}, warmed {deploy.warmed}",
        "deploy_record": path,
    }
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, deploy.new_version, key, value)
    return path


@flow(name="deploy-hook")
def deploy_hook_flow(new_version: str, old_version: str | None = None) -> DeployRecord:
    """After a promotion: refresh the cache, check drift, record the deploy.

    Args:
        new_version: the version now holding ``@champion``.
        old_version: the version it replaced (None on a first deploy).
    """
    from deploy.stack import Stack

    settings = Settings()
    log = get_run_logger()
    rollout = None
    if Stack.of(settings).running():
        rollout = roll_replicas(settings, new_version)
        cache = DeployCacheReport(old_version, new_version, rollout["removed"], rollout["warmed"])
    else:
        cache = with_retries(refresh_cache, settings)(settings, old_version, new_version)
    # The new version serves already: a failed drift check is recorded, it does not undo that.
    state = drift_flow(trigger_retrain=False, return_state=True)
    if state.is_completed():
        drift: DriftSummary = state.result()
        detected, report = drift.drift_detected, drift.report.html_path
    else:
        detected, report = None, f"drift check failed: {state.message}"
        log.error("deploy hook: %s", report)
    deploy = DeployRecord(
        new_version=new_version,
        old_version=old_version,
        removed=cache.removed,
        warmed=cache.warmed,
        drift_detected=detected,
        drift_report=report,
        rollout=rollout,
    )
    path = with_retries(record, settings)(settings, deploy)
    deploy = DeployRecord(**{**asdict(deploy), "record_path": path})
    log.info("deploy hook: %s", deploy.message)
    return deploy
