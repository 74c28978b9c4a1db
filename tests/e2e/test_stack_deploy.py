"""`finsimples deploy --verify` under steady load: no failed request, the new version everywhere
after, and the load test's verdict in the deploy record."""

from __future__ import annotations

import json
import time

import pytest
import redis

from deploy.programs import endpoints
from tests.e2e.conftest import KEYS, LOAD_KEYS, TICKERS, VERIFY_KEYS, RunningStack
from tests.e2e.load import steady_load

pytestmark = pytest.mark.e2e


def test_rolling_deploy_under_load_fails_no_request(running_stack: RunningStack) -> None:
    served = {slot.model_version for slot in running_stack.slots()}
    assert len(served) == 1, served
    (old,) = served  # v2 at start; earlier tests may have deployed v1
    new = running_stack.v1 if old == running_stack.v2 else running_stack.v2
    keys = [KEYS["deploy"], *LOAD_KEYS]
    with steady_load(running_stack.api, keys, TICKERS, threads=3) as load:
        time.sleep(2)
        # --verify: the load test's ci profile (20 s here) judges the new version too.
        deploy = running_stack.cli(
            "deploy",
            "--version",
            new,
            "--verify",
            env={
                "FINSIMPLES_LOADTEST__VERIFY_SECONDS": "20",
                "FINSIMPLES_LOADTEST__API_KEYS": json.dumps(VERIFY_KEYS),  # not the load's
                # A capacity line, not a health one: here two loads share 2 cores with the
                # replicas (a replica peaked at 99% of a core on a busy CI box). Errors,
                # latency and balance still judge the new version.
                "FINSIMPLES_LOADTEST__MAX_CPU_PERCENT": "200",
            },
        )
        finished = time.monotonic()
        time.sleep(3)

    print(f"deploy v{old} -> v{new}: {load.summary()}")
    assert deploy.returncode == 0, f"{deploy.stdout}\n{deploy.stderr}"
    answers = load.snapshot()
    assert not load.failed, (load.summary(), load.failed[:3])

    # After the deploy, every answer comes from the new version, on every replica.
    after = [a for a in answers if a.sent_at > finished]
    assert after
    assert {a.model_version for a in after} == {new}
    assert {a.replica for a in after} == {slot.name for slot in running_stack.slots()}
    assert {slot.model_version for slot in running_stack.slots()} == {new}

    # Redis holds none of the old version's answers.
    client = redis.Redis.from_url(endpoints(running_stack.settings, False).redis)
    old_keys = [k for p in ("forecast", "narrative") for k in client.scan_iter(f"{p}:{old}:*")]
    assert not old_keys, old_keys[:5]

    # The report's counts agree with the clients': NGINX logged what they sent meanwhile,
    # give or take the requests in flight at the window's two ends (one per client thread).
    record = running_stack.deploy_record(new)
    assert record["verification"]["passed"], record["verification"]
    assert record["verification"]["requests"] > 500
    assert record["rolled_back_to"] is None
    assert "load test verdict: PASS" in deploy.stdout
    rollout = record["rollout"]
    begin, end = rollout["window"]
    sent = [a for a in answers if begin <= a.sent_wall <= end]
    print(f"deploy report: {rollout['requests']} requests, clients sent {len(sent)} meanwhile")
    assert rollout["errors"] == 0
    assert len(rollout["replicas"]) == 3
    assert abs(rollout["requests"] - len(sent)) <= 2 * 3, (rollout["requests"], len(sent))
    assert sum(rollout["statuses"].values()) == rollout["requests"]
