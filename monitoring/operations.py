"""The alert rules of the platform running itself: serving follows the registry, the deploy
controller is alive, each exchange's daily flow succeeded after its close.

Pure, like ``monitoring.alerts``. Series: ``finsimples_registry_champion_info`` and
``finsimples_controller_*`` from the deploy controller (``deploy.controller``, job
:data:`~config.monitoring.CONTROLLER_JOB`), ``finsimples_model_info`` and
``finsimples_daily_flow_due_timestamp_seconds`` from the replicas (``bentos.metrics``).
"""

from __future__ import annotations

from config.monitoring import CONTROLLER_JOB, AlertConfig
from monitoring.alerts import API, Alert, RuleGroup

CONTROLLER = f'job="{CONTROLLER_JOB}"'


def operations_group(config: AlertConfig) -> RuleGroup:
    """ServedVersionMismatch, DeployControllerDown, DailyFlowMissed."""
    stuck_seconds = config.controller_stuck_minutes * 60
    grace_seconds = config.daily_flow_grace_minutes * 60
    return RuleGroup(
        "finsimples-operations",
        "operations.yml",
        (
            Alert(
                "ServedVersionMismatch",
                # Replicas whose version is not @champion's, while the registry is read at all
                # (without the controller's series, DeployControllerDown speaks instead).
                f"count(finsimples_model_info{{{API}}}\n"
                f"  unless on (model_version) finsimples_registry_champion_info{{{CONTROLLER}}})"
                " > 0\n"
                f"and on () count(finsimples_registry_champion_info{{{CONTROLLER}}}) > 0",
                "ticket",
                "{{ $value }} replica(s) serve another version than @champion",
                "The replicas have served another model version than the one @champion points "
                f"at in the registry for {config.served_mismatch_for}, longer than a deploy "
                "with its verification takes: a promotion did not reach them, or a version "
                "failed its verification and is held.",
                "`finsimples deploy status`: the controller's last decisions say why (held "
                "after a failed verification, deploys failing, or the controller down); "
                "`finsimples deploy` deploys @champion by hand.",
                duration=config.served_mismatch_for,
            ),
            Alert(
                "DeployControllerDown",
                f"up{{{CONTROLLER}}} == 0\nor time() - "
                f"finsimples_controller_last_reconcile_timestamp_seconds{{{CONTROLLER}}}"
                f" > {stuck_seconds}",
                "ticket",
                "The deploy controller is down or stuck",
                "The deploy controller does not answer, or has not compared @champion with "
                f"the replicas for {config.controller_stuck_minutes} minutes: promotions "
                "(the flows', the CLI's, MLflow's UI) no longer reach the replicas.",
                "`finsimples stack status` (program deploy-controller) and `finsimples stack "
                "logs deploy-controller`; in Kubernetes, the controller's pod and its Lease.",
                duration=config.controller_down_for,
            ),
            Alert(
                "DailyFlowMissed",
                "time() - max by (exchange) (finsimples_daily_flow_due_timestamp_seconds)"
                f" > {grace_seconds}",
                "ticket",
                "{{ $labels.exchange }}: the daily flow did not succeed after the close",
                "The daily flow of {{ $labels.exchange }} was due after the exchange's last "
                "session close and has not succeeded "
                f"{config.daily_flow_grace_minutes} minutes later: the day's prices are not "
                "in the lake, and no retrain used them.",
                "Is the scheduler up (`finsimples stack status`: prefect-server, "
                "flows-runner; the Prefect UI's flow runs)? Did the run fail (its logs), or "
                "did no file arrive in the drop location?",
            ),
        ),
    )
