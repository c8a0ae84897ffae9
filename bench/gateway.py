"""The LLM gateway's added latency and throughput, against the upstream measured in the same run.

    .venv/bin/python bench/gateway.py [--seconds 5] [--concurrency 1,4,16,32] [--workers 2]
                                      [--warmup 1] [--load-processes 1] [--direct-only]
                                      [--profile [--profile-out gateway-profile.txt]]

Starts the loopback OpenAI-compatible upstream (tests/upstream) in its own process and a real
``deskpilot serve --workers W --config deployments.yaml`` on a fresh temporary DESKPILOT_HOME
(embedded PostgreSQL; Redis at ``--redis-url``, default redis://127.0.0.1:6379/14, which is
flushed first). Every request takes the full path: key auth, routing, quota reserve/settle,
durable metering. The tenant, its quotas and keys are made through the admin HTTP API.
``--workers 1,2`` restarts the server per count on the same home.

Load comes from bench/loadgen.py worker processes (keep-alive HTTP/1.1 on asyncio protocols).
Each concurrency level is measured against the upstream directly and through deskpilot, back
to back; at one connection the two alternate in short rounds so the machine's noise hits both
alike, and the added latency is the difference of the p50s (also the median of the per-round
differences). Each level also says where the CPU went (``cpu_cores``, ``cpu_ms_per_request``
per process group; ``other`` is everything else on the machine) and, for deskpilot, how the
connections spread over its workers. Afterwards every successful request must be metered
(``usage_events`` == ``requests_ok``) and the quotas must have counted it (``quota_used``).

Prints progress on stderr and JSON on stdout: one object per (target, workers, concurrency),
then the summary as the last line (``direct_rps``, ``deskpilot_rps`` (best worker count),
``direct_p50_ms_1conn``, ``deskpilot_p50_ms_1conn``, ``added_p50_ms_1conn`` (all three at that
worker count; ``added_p50_ms_1conn_by_workers`` has every count), ``concurrency``, ``workers``,
the ratio to the LiteLLM proxy's 64 requests/s, ``usage_events``,
``requests_ok``, ``errors``, the load generator's own cost and ceiling). Exits 1 when more
than ``--max-error-fraction`` of the requests failed or metering missed any.
``--direct-only`` measures the upstream alone (a check of the load generator); ``--profile``
samples one worker with py-spy (when installed) at the highest concurrency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_profile import find_py_spy, hot_spots, recording
from gateway_server import (  # bench/gateway_server.py, loadgen.py, ...: siblings
    UPSTREAM_KEY,
    Deskpilot,
    deskpilot_home,
    serve_has_config_option,
    upstream_process,
)
from loadgen import LoadPool, Outcome, Target, encode_post, loop_name, percentile_ms
from procstat import CpuMeter

PATH = "/v1/chat/completions"
QUESTION = "My VPN disconnects every 10 minutes since the update, what should I check?"
LITELLM_PROXY_RPS = 64  # the LiteLLM proxy at 16 connections on this machine: 48-64
ADDED_P50_TARGET_MS = 2.0
THROUGHPUT_TARGET = 10  # times the LiteLLM proxy


def body(model: str) -> bytes:
    messages = [{"role": "user", "content": QUESTION}]
    return json.dumps({"model": model, "messages": messages, "max_tokens": 64}).encode()


def target(name: str, port: int, model: str, key: str) -> Target:
    headers = {"Authorization": f"Bearer {key}"}
    return Target(
        name, "127.0.0.1", port, encode_post("127.0.0.1", port, PATH, body(model), headers)
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def progress(result: dict[str, Any]) -> None:
    name, connections = result["target"], result["concurrency"]
    log(f"  {name:9} c={connections:<3} {result['rps']:>8} req/s  p50 {result['p50_ms']} ms")


def attempts(outcome: Outcome) -> int:
    return outcome.ok_total + sum(outcome.errors.values())


def stats(outcome: Outcome, seconds: float) -> dict[str, Any]:
    samples = sorted(outcome.latencies_ns)
    return {
        "rps": round(len(samples) / seconds, 1),
        "p50_ms": percentile_ms(samples, 0.50),
        "p90_ms": percentile_ms(samples, 0.90),
        "p99_ms": percentile_ms(samples, 0.99),
        "requests": len(samples),
        "errors": sum(outcome.errors.values()),
        "error_kinds": dict(outcome.errors),
    }


class Bench:
    """The load pool, the CPU meter and the running tallies of one benchmark run."""

    def __init__(self, args: argparse.Namespace, pool: LoadPool, upstream_pid: int) -> None:
        self.args = args
        self.pool = pool
        self.upstream_pid = upstream_pid
        self.cpu = CpuMeter({})
        self.probe: Callable[[], list[int]] | None = None  # connections held per worker
        self.ok = Counter[str]()  # successes per target name, warm-up included
        self.errors = Counter[str]()
        self.load_cpu = [0.0, 0]  # load workers' CPU seconds, requests they made

    def run(self, tgt: Target, connections: int, seconds: float, warmup: float) -> Outcome:
        outcome = self.pool.run(tgt, connections, seconds=seconds, warmup=warmup)
        self.ok[tgt.name] += outcome.ok_total
        self.errors.update({f"{tgt.name}: {k}": n for k, n in outcome.errors.items()})
        self.load_cpu[0] += outcome.cpu_seconds
        self.load_cpu[1] += attempts(outcome)
        return outcome

    def measured(
        self, tgt: Target, connections: int, seconds: float, warmup: float
    ) -> tuple[Outcome, Counter[str], float]:
        """A run, the CPU seconds each process group spent on it, and its wall time."""
        before, started = self.cpu.snapshot(), time.perf_counter()
        outcome = self.run(tgt, connections, seconds, warmup)
        spent = CpuMeter.spent(before, self.cpu.snapshot())
        return outcome, spent, time.perf_counter() - started

    def level(self, tgt: Target, connections: int, workers: int | None) -> dict[str, Any]:
        """One measured level; prints its JSON line."""
        spread: list[list[int]] = []
        probe, timer = self.probe, None
        if tgt.name == "deskpilot" and probe is not None:  # once, mid-window
            at = 0.2 + self.args.warmup + self.args.seconds / 2
            timer = threading.Timer(at, lambda: spread.append(probe()))
            timer.start()
        outcome, spent, wall = self.measured(tgt, connections, self.args.seconds, self.args.warmup)
        if timer is not None:
            timer.cancel()
        result = {"target": tgt.name, "workers": workers, "concurrency": connections}
        if spread:
            result["connections_per_worker"] = spread[0]
        result |= stats(outcome, self.args.seconds)
        result |= CpuMeter.usage(spent, wall, attempts(outcome))
        progress(result)
        emit(result)
        return result

    def one_connection(
        self, direct: Target, gateway: Target, workers: int | None
    ) -> dict[str, Any]:
        """Direct and deskpilot at one connection in alternating rounds."""
        seconds = self.args.round_seconds
        rounds = max(2, round(self.args.seconds / seconds))
        merged = {direct.name: Outcome(), gateway.name: Outcome()}
        cpu = {direct.name: Counter[str](), gateway.name: Counter[str]()}
        walls = Counter[str]()
        differences = []
        for n in range(rounds):
            p50: dict[str, float] = {}
            for tgt in (direct, gateway) if n % 2 == 0 else (gateway, direct):
                outcome, spent, wall = self.measured(tgt, 1, seconds, self.args.round_warmup)
                merged[tgt.name].merge(outcome)
                cpu[tgt.name].update(spent)
                walls[tgt.name] += wall
                p50[tgt.name] = statistics.median(outcome.latencies_ns or [0]) / 1e6
            differences.append(p50[gateway.name] - p50[direct.name])
        results = {}
        for name, outcome in merged.items():
            result = {"target": name, "workers": workers, "concurrency": 1, "rounds": rounds}
            result |= stats(outcome, rounds * seconds)
            results[name] = result | CpuMeter.usage(cpu[name], walls[name], attempts(outcome))
        mine, theirs = results[gateway.name], results[direct.name]
        if mine["p50_ms"] is not None and theirs["p50_ms"] is not None:
            mine["added_p50_ms"] = round(mine["p50_ms"] - theirs["p50_ms"], 3)
        mine["added_p50_ms_round_median"] = round(statistics.median(differences), 3)
        for result in results.values():
            progress(result)
            emit(result)
        return results

    def levels(self, direct: Target, gateway: Target | None, workers: int | None) -> dict[int, Any]:
        """Every concurrency level: {connections: {target name: result}}."""
        found: dict[int, Any] = {}
        for connections in self.args.concurrency:
            if connections == 1 and gateway is not None:
                found[1] = self.one_connection(direct, gateway, workers)
                continue
            found[connections] = {direct.name: self.level(direct, connections, workers)}
            if gateway is not None:
                found[connections][gateway.name] = self.level(gateway, connections, workers)
        return found

    def load_cost(self) -> dict[str, Any]:
        seconds, requests = self.load_cpu
        per_request_us = seconds / requests * 1e6 if requests else None
        ceiling = self.args.load_processes * 1e6 / per_request_us if per_request_us else None
        return {
            "load_us_per_request": round(per_request_us, 1) if per_request_us else None,
            "load_ceiling_rps": round(ceiling) if ceiling else None,
        }


def summary(
    bench: Bench, runs: dict[int, dict[int, Any]], usage_events: int | None
) -> dict[str, Any]:
    top = max(bench.args.concurrency)
    best = max(runs, key=lambda w: runs[w][top]["deskpilot"]["rps"])
    chosen = runs[best]
    deskpilot_rps = chosen[top]["deskpilot"]["rps"]
    cpu = chosen[top]["deskpilot"].get("cpu_ms_per_request", {})
    ok = bench.ok["deskpilot"]
    errors = sum(bench.errors.values())
    failed = sum(n for kind, n in bench.errors.items() if kind.startswith("deskpilot:"))
    # A failed request may or may not have been metered (an error event); a success must be.
    metered = usage_events is not None and (usage_events >= ok if failed else usage_events == ok)
    return {
        "direct_rps": chosen[top]["direct"]["rps"],
        "deskpilot_rps": deskpilot_rps,
        "deskpilot_rps_by_workers": {str(w): runs[w][top]["deskpilot"]["rps"] for w in runs},
        "direct_p50_ms_1conn": chosen[1]["direct"]["p50_ms"],
        "deskpilot_p50_ms_1conn": chosen[1]["deskpilot"]["p50_ms"],
        "added_p50_ms_1conn": chosen[1]["deskpilot"].get("added_p50_ms"),
        "added_p50_ms_1conn_round_median": chosen[1]["deskpilot"]["added_p50_ms_round_median"],
        # per worker count: the workers' runs are minutes apart, and this shared machine's
        # speed drifts (compare the direct p50s, and the CPU per request of the upstream)
        "added_p50_ms_1conn_by_workers": {
            str(w): runs[w][1]["deskpilot"].get("added_p50_ms") for w in runs if 1 in runs[w]
        },
        "direct_p50_ms_1conn_by_workers": {
            str(w): runs[w][1]["direct"]["p50_ms"] for w in runs if 1 in runs[w]
        },
        "deskpilot_p99_ms_1conn": chosen[1]["deskpilot"]["p99_ms"],
        "deskpilot_p50_ms_top": chosen[top]["deskpilot"]["p50_ms"],
        "deskpilot_p99_ms_top": chosen[top]["deskpilot"]["p99_ms"],
        # deskpilot's own CPU per request: steadier than requests/s on a shared machine
        "deskpilot_cpu_ms_per_request": cpu.get("deskpilot"),
        "concurrency": top,
        "workers": best,
        "litellm_proxy_rps_reference": LITELLM_PROXY_RPS,
        "throughput_vs_litellm": round(deskpilot_rps / LITELLM_PROXY_RPS, 1),
        "meets_added_latency_target": (chosen[1]["deskpilot"].get("added_p50_ms") or 1e9)
        <= ADDED_P50_TARGET_MS,
        "meets_throughput_target": deskpilot_rps >= THROUGHPUT_TARGET * LITELLM_PROXY_RPS,
        "usage_events": usage_events,
        "requests_ok": ok,
        "metering_complete": metered,
        "errors": errors,
        "error_kinds": dict(bench.errors),
        **bench.load_cost(),
        "load_processes": bench.args.load_processes,
        "event_loop": loop_name(),
        "seconds": bench.args.seconds,
    }


def direct_summary(bench: Bench, levels: dict[int, Any]) -> dict[str, Any]:
    top = max(bench.args.concurrency)
    return {
        "direct_rps": levels[top]["direct"]["rps"],
        "direct_rps_by_concurrency": {str(c): levels[c]["direct"]["rps"] for c in levels},
        "direct_p50_ms_1conn": levels[1]["direct"]["p50_ms"] if 1 in levels else None,
        "deskpilot_rps": None,
        "deskpilot_p50_ms_1conn": None,
        "added_p50_ms_1conn": None,
        "concurrency": top,
        "workers": None,
        "requests_ok": bench.ok["direct"],
        "errors": sum(bench.errors.values()),
        "error_kinds": dict(bench.errors),
        **bench.load_cost(),
        "load_processes": bench.args.load_processes,
        "event_loop": loop_name(),
    }


def run_gateway(bench: Bench, direct: Target, upstream_port: int) -> dict[str, Any]:
    runs: dict[int, dict[int, Any]] = {}
    usage_events, quota_used = None, None
    with deskpilot_home(upstream_port, bench.args.redis_url) as dp:
        for n, workers in enumerate(bench.args.workers):
            log(f"deskpilot serve --workers {workers}{' (first start: initdb)' if n == 0 else ''}")
            with dp.running(workers):
                if n == 0:
                    dp.create_tenant()
                dp.check_chat(PATH, body("bench"))
                bench.ok["deskpilot"] += 1
                gateway = target("deskpilot", dp.port, "bench", dp.key)
                bench.cpu = CpuMeter(bench_groups(bench, dp))
                bench.probe = dp.connections_per_worker
                runs[workers] = bench.levels(direct, gateway, workers)
                if n == len(bench.args.workers) - 1:
                    usage_events = dp.wait_for_usage_events(bench.ok["deskpilot"])
                    quota_used = dp.quota_used()
    final = summary(bench, runs, usage_events) | {"quota_used": quota_used}
    if quota_used and final["requests_ok"]:  # the upstream's usage, settled per request
        tokens = float(quota_used["tokens_per_period"]) / final["requests_ok"]
        final["quota_tokens_per_request"] = round(tokens, 2)
    return final


def bench_groups(bench: Bench, dp: Deskpilot | None) -> dict[str, list[int]]:
    groups = {"load": bench.pool.pids, "upstream": [bench.upstream_pid]}
    if dp is not None:
        groups["deskpilot"] = [dp.pid]
        postmaster = dp.postmaster_pid()
        groups["postgres"] = [postmaster] if postmaster else []
    return groups


def run_profile(bench: Bench, spy: str, upstream_port: int) -> dict[str, Any]:
    top, out = max(bench.args.concurrency), Path(bench.args.profile_out).resolve()
    with (
        deskpilot_home(upstream_port, bench.args.redis_url) as dp,
        dp.running(1),
    ):
        dp.create_tenant()
        dp.check_chat(PATH, body("bench"))
        gateway = target("deskpilot", dp.port, "bench", dp.key)
        bench.run(gateway, top, 1.0, 0.0)  # warm up before sampling starts
        with recording(spy, dp.pid, bench.args.seconds, out):
            result = stats(bench.run(gateway, top, bench.args.seconds, 0.0), bench.args.seconds)
    return {"profile": str(out), "concurrency": top, "workers": 1, **result, **hot_spots(out)}


def main(args: argparse.Namespace) -> int:
    if not args.direct_only and not serve_has_config_option():
        sys.exit(
            "deskpilot serve has no --config option in this checkout: the gateway has not "
            "landed yet (--direct-only measures the upstream and the load generator alone)"
        )
    spy = find_py_spy() if args.profile else None
    if args.profile and spy is None:
        sys.exit("--profile needs py-spy (pip install py-spy into the venv); it is not installed")
    with upstream_process() as (upstream_port, upstream_pid):
        direct = target("direct", upstream_port, "gpt-4o-mini", UPSTREAM_KEY)
        pool = LoadPool(args.load_processes)
        try:
            bench = Bench(args, pool, upstream_pid)
            if spy is not None:
                emit(run_profile(bench, spy, upstream_port))
                return 0
            if args.direct_only:
                bench.cpu = CpuMeter(bench_groups(bench, None))
                final = direct_summary(bench, bench.levels(direct, None, None))
            else:
                final = run_gateway(bench, direct, upstream_port)
        finally:
            pool.close()
    emit(final)
    return verdict(final, args.max_error_fraction)


def verdict(final: dict[str, Any], max_error_fraction: float) -> int:
    attempted = final["requests_ok"] + final["errors"]
    if attempted and final["errors"] / attempted > max_error_fraction:
        log(f"FAILED: {final['errors']} of {attempted} requests failed: {final['error_kinds']}")
        return 1
    if final.get("metering_complete") is False:
        log(f"FAILED: {final['usage_events']} usage events for {final['requests_ok']} successes")
        return 1
    if final["errors"]:
        log(f"note: {final['errors']} requests failed: {final['error_kinds']}")
    return 0


def numbers(text: str) -> list[int]:
    return sorted({int(part) for part in text.split(",") if part.strip()})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per level")
    parser.add_argument("--concurrency", type=numbers, default=[1, 4, 16, 32])
    parser.add_argument("--workers", type=numbers, default=[2], help="e.g. 2 or a sweep 1,2")
    parser.add_argument("--load-processes", type=int, default=1)
    parser.add_argument("--round-seconds", type=float, default=0.5, help="1-connection rounds")
    parser.add_argument("--round-warmup", type=float, default=0.1)
    parser.add_argument("--max-error-fraction", type=float, default=0.001)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="flushed!")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--direct-only", action="store_true", help="the upstream alone")
    mode.add_argument("--profile", action="store_true", help="one worker under py-spy")
    parser.add_argument("--profile-out", default="gateway-profile.txt")
    args = parser.parse_args()
    if 1 not in args.concurrency:
        args.concurrency = [1, *args.concurrency]  # the added latency is defined at one
    return args


if __name__ == "__main__":
    sys.exit(main(parse_args()))
