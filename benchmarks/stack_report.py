"""The stack benchmark's tables and the goals' verdict, from its JSON summary."""

from __future__ import annotations

from typing import Any

GOAL_RATE = 500.0  # req/s through NGINX with p99 <= GOAL_P99_MS and no error
GOAL_P99_MS = 50.0
GOAL_COLD_SECONDS = 12.0  # per replica, program start to /readyz
GOAL_DEPLOY_P99_RATIO = 2.0  # p99 during a rolling deploy / before it

FIGURES = f"{'ok':>6} {'err':>4} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"


def _figures(f: dict[str, Any]) -> str:
    return (
        f"{f['ok']:>6} {f['errors']:>4} {f['rate']:>7.1f} {f['p50_ms']:>7.2f} "
        f"{f['p99_ms']:>7.2f} {f['max_ms']:>7.1f}"
    )


def _share(f: dict[str, Any]) -> str:
    return " ".join(f"{name.removeprefix('replica-')}:{v:.0%}" for name, v in f["share"].items())


def _cores(c: dict[str, float]) -> str:
    keys = ("client", "nginx", "replicas", "redis", "stack other", "others", "machine")
    return " ".join(f"{c.get(k, 0.0):>5.2f}" for k in keys)


CORES = "client nginx replc redis stack other  all"
CPU_KEYS = ("client", "nginx", "replicas", "redis")


def best(rows: list[dict[str, Any]], goal_ms: float) -> dict[str, Any] | None:
    """The level with the highest rate among those meeting the latency goal with no error."""
    good = [r for r in rows if r["p99_ms"] <= goal_ms and r["errors"] == 0]
    return max(good, key=lambda r: r["rate"]) if good else None


def print_throughput(rows: dict[str, list[dict[str, Any]]], goal_ms: float) -> list[str]:
    """The levels' table, the ratios; verdict lines."""
    print(f"\nThroughput, cache hits (cores busy: {CORES})")
    print(f"{'clients':>7} {'target':<18} {FIGURES}  {'cores':<42} share")
    for nginx, direct in zip(rows["nginx"], rows["direct"], strict=True):
        for name, row in (("NGINX, 3 replicas", nginx), ("replica-1 direct", direct)):
            print(
                f"{row['clients']:>7} {name:<18} {_figures(row)}  {_cores(row['cores']):<42} "
                f"{_share(row)}"
            )
    for row in rows["ab_nginx"]:
        print(
            f"{row['clients']:>7} {'ab -k via NGINX':<18} {row['ok']:>6} {row['errors']:>4} "
            f"{row['rate']:>7.1f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} "
            f"{row['max_ms']:>7.1f}  {_cores(row['cores']):<42} {row['processes']} ab processes, "
            f"{row['keep_alive']} kept alive"
        )
    top, single = best(rows["nginx"], goal_ms), best(rows["direct"], goal_ms)
    top_ab = best(rows["ab_nginx"], goal_ms) if rows["ab_nginx"] else None
    if top and single:
        print(
            f"best under p99 <= {goal_ms:.0f} ms: NGINX {top['rate']:.0f} req/s at "
            f"{top['clients']} clients, replica-1 direct {single['rate']:.0f} req/s at "
            f"{single['clients']} clients: scaling 3 replicas via NGINX / 1 direct = "
            f"{top['rate'] / single['rate']:.2f}x"
        )
        for name, level in (("NGINX", top), ("direct", single), ("ab via NGINX", top_ab)):
            if level is not None:
                used = {k: level["cores"].get(k, 0.0) / level["rate"] * 1e6 for k in CPU_KEYS}
                print(
                    f"  CPU per request at that level ({name}): "
                    + ", ".join(f"{k} {v:.0f} us" for k, v in used.items())
                )
    return verdict_lines(top, top_ab, goal_ms)


def verdict_lines(
    top: dict[str, Any] | None, top_ab: dict[str, Any] | None, goal_ms: float
) -> list[str]:
    """The throughput goal's verdict for each load generator."""
    verdict = []
    for name, found in (("Python client", top), ("ab -k", top_ab)):
        if found is not None:
            row = found
            met = "met" if row["rate"] >= GOAL_RATE else "MISSED"
            verdict.append(
                f"throughput >= {GOAL_RATE:.0f} req/s at p99 <= {goal_ms:.0f} ms, 0 errors "
                f"({name}): {met} ({row['rate']:.0f} req/s at {row['clients']} clients, "
                f"p99 {row['p99_ms']:.1f} ms)"
            )
    return verdict


def print_lb_cost(paths: dict[str, dict[str, Any]]) -> None:
    """One client over three paths: NGINX's hop apart from the spreading over replicas."""
    print("\nLoad balancer's cost, 1 client (two turns of each path, pooled)")
    print(f"{'path':<20} {FIGURES}")
    for name, f in paths.items():
        print(f"{name:<20} {_figures(f)}")
    direct, one, three = (paths[k]["p50_ms"] for k in paths)
    print(
        f"p50: NGINX's hop +{one - direct:.2f} ms, spreading over 3 replicas "
        f"+{three - one:.2f} ms more"
    )


def print_balancing(result: dict[str, Any]) -> None:
    """Pooled figures per method and load, then each run."""
    print(
        f"\nBalancing at {result['clients']} closed-loop clients of cache hits, plus slow "
        f"requests (open loop, Poisson; miss + 0.5 s delay) per second: {result['slow_rates']}"
    )
    print(f"{'method':<12} {'load':<6} {'kind':<5} {FIGURES}  share")
    for method, loads in result["pooled"].items():
        for load, kinds in loads.items():
            for kind, f in kinds.items():
                print(f"{method:<12} {load:<6} {kind:<5} {_figures(f)}  {_share(f)}")
    lc, rr = (result["pooled"][m] for m in ("least_conn", "round_robin"))
    for load in lc:
        for kind in lc[load]:
            a, b = lc[load][kind], rr[load][kind]
            print(
                f"{load}, {kind}: least_conn vs round_robin: {a['rate']:.0f} vs {b['rate']:.0f} "
                f"req/s, p50 {a['p50_ms']:.2f} vs {b['p50_ms']:.2f} ms, p99 {a['p99_ms']:.1f} vs "
                f"{b['p99_ms']:.1f} ms (round_robin / least_conn p99 "
                f"{b['p99_ms'] / a['p99_ms']:.2f}x)"
            )
    print("each run (order A B B A):")
    for run in result["runs"]:
        for kind, f in run.items():
            if isinstance(f, dict):
                print(f"  {run['method']:<12} {run['load']:<6} {kind:<5} {_figures(f)}")


def print_cold_and_deploy(cold: dict[str, Any], deploy: dict[str, Any]) -> list[str]:
    """Cold starts (stack up, rolling deploy) and the deploy under load; verdict lines."""
    rollout = deploy["rollout"]
    starts = [r["start_seconds"] for r in rollout["replicas"]]
    print(f"\nCold start: `stack up` {cold['up_seconds']:.1f} s in all")
    print("  replicas started together by stack up: " + _seconds(cold["replicas"]))
    print(
        "  rolling deploy, one at a time, under load: "
        + ", ".join(f"{r['replica']} {r['start_seconds']:.1f} s" for r in rollout["replicas"])
    )
    print(
        f"\nRolling deploy v{', v'.join(rollout['old_versions'])} -> v{rollout['new_version']} "
        f"at {deploy['rate']:.0f} req/s (open loop): command {deploy['command_seconds']:.1f} s, "
        f"rollout {rollout['seconds']:.1f} s; NGINX logged {rollout['requests']} requests, "
        f"{rollout['errors']} errors; machine cores busy before "
        f"{deploy['machine_cores']['before']:.2f}, during the command "
        f"{deploy['machine_cores']['during']:.2f}"
    )
    print(f"{'window':<18} {FIGURES} {'resent':>6}  share")
    names = ("before", "during_rollout", "rollout_starting", "rollout_switching")
    for name in (*names, "during_command", "after", "all"):
        f = deploy[name]
        print(f"{name:<18} {_figures(f)} {f['resent']:>6}  {_share(f)}")
    print(f"versions served after the deploy: {deploy['versions_after']}")
    print(
        f"{'replica':<10} {'start':>6} {'warm':>6} {'warmed':>6} {'switch':>7} {'drain':>6}\n"
        + "\n".join(
            f"{r['replica']:<10} {r['start_seconds']:>6.1f} {r['warm_seconds']:>6.1f} "
            f"{r['warmed']:>6} {r['switch_seconds']:>7.2f} {r['drain_seconds']:>6.1f}"
            for r in rollout["replicas"]
        )
    )
    before = deploy["before"]
    errors = deploy["all"]["errors"]
    worst_up = max(cold["replicas"].values())
    lines = [
        f"cold start <= {GOAL_COLD_SECONDS:.0f} s per replica: rolling deploy (one at a time) "
        f"{'met' if max(starts) <= GOAL_COLD_SECONDS else 'MISSED'} (max {max(starts):.1f} s); "
        f"stack up (three at once) {'met' if worst_up <= GOAL_COLD_SECONDS else 'MISSED'} "
        f"(max {worst_up:.1f} s)",
    ]
    for name in ("during_rollout", "during_command"):
        during = deploy[name]
        ratio = during["p99_ms"] / before["p99_ms"]
        lines.append(
            f"deploy p99 {name.replace('_', ' ')} <= {GOAL_DEPLOY_P99_RATIO:.0f}x before: "
            f"{'met' if ratio <= GOAL_DEPLOY_P99_RATIO else 'MISSED'} "
            f"({during['p99_ms']:.1f} vs {before['p99_ms']:.1f} ms, {ratio:.2f}x)"
        )
    failures = deploy["all"].get("failures") or {}
    lines.append(
        f"deploy errors 0: {'met' if errors == 0 else 'MISSED'} ({errors} errors"
        + (f" {failures}" if failures else "")
        + f", {deploy['all']['resent']} resends on a closed keep-alive connection)"
    )
    return lines


def _seconds(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {v:.1f} s" for name, v in values.items())


def print_report(summary: dict[str, Any], goal_ms: float) -> None:
    """Every table, then the goals' verdict."""
    verdict = print_throughput(summary["throughput"], goal_ms)
    print_lb_cost(summary["lb_cost"])
    print_balancing(summary["balancing"])
    verdict += print_cold_and_deploy(summary["cold_start"], summary["deploy"])
    print(
        f"\nload averages (start, after throughput, balancing, deploy, end): "
        f"{' | '.join(summary['load_averages'])}; {summary['total_seconds']:.0f} s in all"
    )
    print("\nGoals:\n" + "\n".join(f"- {line}" for line in verdict))
