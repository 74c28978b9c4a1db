"""The deploy hook flow: what follows a promotion (and what ``finsimples deploy`` runs).

1. the new version reaches the servers. With a local stack running (``finsimples stack up``),
   a rolling deploy replaces each replica with one serving the new version, warms it, and
   removes the old version's answers from Redis (``deploy.rolling``). Without one, the
   prediction cache step alone: the old version's answers dropped, the new version's warmed
   for the most requested tickers (``bentos.deploy_hook.invalidate_and_warm``; keys carry the
   model version, so replicas never mix versions even before this step);
2. with ``verify`` (``finsimples deploy --verify``, a stack running): the load test's ``ci``
   profile against the stack (``loadtest.runner``). When its verdict fails, or it cannot run,
   the replicas roll back to the version they served before and ``@champion`` goes back to it
   too (an audited promotion), so a restart never brings the failed version back;
3. the drift check of the new champion (``flows.drift``, without its retrain trigger), unless
   it was rolled back;
4. a deploy record: JSON in the lake under ``reports/deploys/`` and tags on the version.

The whole hook holds the model lock (``flows.locks``): never two rollouts, cache refreshes or
rollbacks at once. Called by the retrain flow, which holds it already, it does not wait.
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
from deploy.controller import DeployResult
from finsimples.lake import Lake
from finsimples.settings import Settings
from flows.drift import DriftSummary, drift_flow
from flows.io import io_task, with_retries
from flows.locks import model_lock
from jobs.common import open_registry

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
    verification: dict[str, Any] | None = None  # the load test's verdict, with --verify
    rolled_back_to: str | None = None  # the version restored when the verification failed
    rollback_error: str | None = None  # what of that rollback failed (None: all of it worked)

    @property
    def landed(self) -> bool:
        """Whether the deploy stands (False: its load test failed; see ``rollback_error``)."""
        return self.verification is None or bool(self.verification["passed"])

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
        verified = ""
        if self.verification is not None:
            verified = "load test verdict: PASS; "
            if not self.verification["passed"]:
                undone = f"rolled back to v{self.rolled_back_to}"
                if self.rollback_error:
                    undone = f"rollback to v{self.rolled_back_to} FAILED ({self.rollback_error})"
                failures = "; ".join(self.verification["failures"])
                verified = f"load test verdict: FAIL ({failures}), {undone}; "
        return (
            f"v{self.old_version} -> v{self.new_version}: {rolled}{verified}{self.removed} cached "
            f"answers removed, {self.warmed} warmed; {drift} ({self.drift_report})"
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


@task(cache_policy=NO_CACHE)
def verify_rollout(settings: Settings) -> dict[str, Any]:
    """The load test's ``ci`` profile against the stack: its verdict and report folder."""
    from loadtest.runner import LoadTestError, run_loadtest

    log = get_run_logger()
    seconds = settings.loadtest.verify_seconds
    try:
        run = run_loadtest(settings, "ci", duration=seconds, progress=log.info)
    except Exception as exc:  # whatever stopped it, the new version was not verified
        reason = str(exc) if isinstance(exc, LoadTestError) else f"{type(exc).__name__}: {exc}"
        log.error("deploy verification could not run: %s", reason)
        return {
            "passed": False,
            "failures": [f"the load test could not run: {reason}"],
            "report": "",
        }
    for failure in run.verdict.failures:
        log.error("deploy verification: %s", failure)
    return {
        "passed": run.verdict.passed,
        "failures": run.verdict.failures,
        "report": str(run.folder),
        "requests": run.summary["requests"],
        "p95_seconds": run.summary["latency_seconds"]["p95"],
    }


def check_verifiable(settings: Settings) -> None:
    """Before anything moves: the load test of ``--verify`` can reach the stack with its keys."""
    from deploy.stack import Stack
    from loadtest.runner import LoadTestError, check_reachable

    try:
        check_reachable(settings, Stack.of(settings).urls.api)
    except LoadTestError as exc:
        raise ValueError(f"--verify cannot run its load test: {exc}") from exc


def undo(settings: Settings, old: str, new: str, why: str) -> str | None:
    """``@champion`` then the replicas back to ``old``; what failed (None: both worked)."""
    errors = []
    try:
        restore_champion(settings, old, new, why)
    except Exception as exc:
        errors.append(f"@champion not restored: {exc}")
    try:
        roll_replicas(settings, old)
    except Exception as exc:
        errors.append(f"replicas not rolled back: {exc}")
    return "; ".join(errors) or None


@task(cache_policy=NO_CACHE)
def restore_champion(settings: Settings, old: str, new: str, why: str) -> None:
    """Give ``@champion`` back to ``old`` if ``new`` holds it (an audited promotion)."""
    registry = open_registry(settings)
    champion = registry.champion()
    if champion is not None and str(champion.version) == new:
        registry.promote(old, reason=f"deploy verification of v{new} failed: {why}")


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


def check_drift() -> tuple[bool | None, str]:
    """The drift check of the serving champion: (drift detected, report path or failure)."""
    state = drift_flow(trigger_retrain=False, return_state=True)
    if state.is_completed():
        drift: DriftSummary = state.result()
        return drift.drift_detected, drift.report.html_path
    report = f"drift check failed: {state.message}"
    get_run_logger().error("deploy hook: %s", report)
    return None, report


@flow(name="deploy-hook")
def deploy_hook_flow(
    new_version: str,
    old_version: str | None = None,
    verify: bool = False,
    model_locked: bool = True,
) -> DeployRecord:
    """After a promotion: refresh the cache, check drift, record the deploy (under the model
    lock).

    Args:
        new_version: the version now holding ``@champion``.
        old_version: the version it replaced (None on a first deploy).
        verify: with a stack running, judge the rollout with the load test's ``ci`` profile and
            roll back to ``old_version`` when it fails (``old_version`` must be one version).
        model_locked: hold the model lock. The deploy controller passes False: it holds the
            stack's deploy lock, an flock the kernel frees when its holder dies, whereas a slot
            of the Prefect limit taken by a killed process stays taken on a temporary server,
            and nothing else in the model section conflicts with a rollout (a promotion made
            meanwhile is the controller's next deploy; ``restore_champion`` leaves it alone).
    """
    if not model_locked:
        return _deploy(new_version, old_version, verify)
    with model_lock("deploy-hook"):
        return _deploy(new_version, old_version, verify)


def _deploy(new_version: str, old_version: str | None, verify: bool) -> DeployRecord:
    from deploy.stack import Stack

    settings = Settings()
    log = get_run_logger()
    rollout = verification = rolled_back_to = rollback_error = None
    running = Stack.of(settings).running()
    if verify and not running:
        raise ValueError("--verify needs the stack: start it with `finsimples stack up`")
    if verify and (not old_version or "," in old_version):
        raise ValueError(
            f"--verify needs one version to roll back to; the replicas serve {old_version!r}"
        )
    if verify:
        check_verifiable(settings)
    if running:
        rollout = roll_replicas(settings, new_version)
        cache = DeployCacheReport(old_version, new_version, rollout["removed"], rollout["warmed"])
    else:
        cache = with_retries(refresh_cache, settings)(settings, old_version, new_version)
    if verify and old_version == new_version:
        log.warning("deploy hook: v%s already served, nothing to verify", new_version)
    elif verify:
        verification = verify_rollout(settings)
        if not verification["passed"]:
            assert old_version is not None  # noqa: S101 - type narrowing: checked above
            log.error("deploy hook: verification of v%s failed, rolling back", new_version)
            why = "; ".join(verification["failures"])
            rollback_error = undo(settings, old_version, new_version, why)
            rolled_back_to = old_version
            if rollback_error:
                log.error("deploy hook: rollback to v%s failed: %s", old_version, rollback_error)
    if rolled_back_to is None:
        # The new version serves: a failed drift check is recorded, it does not undo that.
        detected, report = check_drift()
    else:
        detected, report = None, "not run: the new version was rolled back"
    deploy = DeployRecord(
        new_version=new_version,
        old_version=old_version,
        removed=cache.removed,
        warmed=cache.warmed,
        drift_detected=detected,
        drift_report=report,
        rollout=rollout,
        verification=verification,
        rolled_back_to=rolled_back_to,
        rollback_error=rollback_error,
    )
    path = with_retries(record, settings)(settings, deploy)
    deploy = DeployRecord(**{**asdict(deploy), "record_path": path})
    log.info("deploy hook: %s", deploy.message)
    return deploy


def deploy_with_hook(
    settings: Settings, version: str, previous: str | None, verify: bool
) -> DeployResult:
    """Roll ``version`` onto the stack through the deploy hook flow (rollout, ``--verify`` gate
    and rollback, drift check, deploy record), holding the stack's deploy lock throughout.

    Raises:
        DeployInProgressError: another process is deploying (the controller waits for it).
        Exception: whatever stopped the deploy before it landed (it undid itself).
    """
    from deploy.layout import StackLayout
    from deploy.rolling import deploy_lock

    layout = StackLayout.of(settings)
    with deploy_lock(layout.deploy_lock):
        served = {slot.model_version for slot in layout.read_slots()}
        if served == {version}:  # a deploy that held the lock a moment ago did it
            return DeployResult(True, None, f"v{version} already serves every replica")
        record = deploy_hook_flow(
            new_version=version, old_version=previous, verify=verify, model_locked=False
        )
    verified = None if record.verification is None else bool(record.verification["passed"])
    return DeployResult(record.landed, verified, record.message, record.rolled_back_to)
