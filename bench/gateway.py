"""The LLM gateway's added latency and throughput, against the upstream measured in the same run.

    .venv/bin/python bench/gateway.py [--seconds 5] [--concurrency 1,4,16,32] [--workers 2]
                                      [--warmup 1] [--load-processes 1] [--direct-only]
                                      [--profile [--profile-out gateway-profile.txt]]

Starts the loopback OpenAI-compatible upstream (tests/upstream) in its own process and a real
``deskpilot serve --workers W --config deployments.yaml`` on a fresh temporary DESKPILOT_HOME
(embedded PostgreSQL; Redis at REDIS_URL, default redis://127.0.0.1:6379/14, flushed first).
Every request takes the full path: key auth, routing, quota reserve/settle, durable metering.
The tenant and its ``llm`` key are made through the admin HTTP API with the operator token.

Load comes from bench/loadgen.py worker processes (keep-alive HTTP/1.1 on asyncio protocols;
its own cost per request is reported, so a load-bound run shows). Each concurrency level is
measured against the upstream directly and through deskpilot, back to back; at one
connection the two alternate in short rounds so the machine's noise hits both alike, and the
added latency is the difference of the p50s (also the median of the per-round differences).
Afterwards the tenant's usage events are counted: every successful request must be metered.

Prints progress on stderr and JSON on stdout: one object per (target, workers, concurrency),
then the summary as the last line (``direct_rps``, ``deskpilot_rps``, ``direct_p50_ms_1conn``,
``deskpilot_p50_ms_1conn``, ``added_p50_ms_1conn``, ``concurrency``, ``workers``, the ratio
to the LiteLLM proxy's 64 requests/s, ``usage_events``, ``requests_ok``, ``errors``). Exits 1
when more than ``--max-error-fraction`` of the requests failed or metering missed any.
``--direct-only`` measures the upstream alone (the load generator's own check).
``--profile`` runs one worker under py-spy (when installed) at the highest concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_server import (  # bench/gateway_server.py and bench/loadgen.py: siblings
    UPSTREAM_KEY,
    CpuMeter,
    Deskpilot,
    deskpilot_home,
    serve_has_config_option,
    upstream_process,
)
from loadgen import LoadPool, Outcome, Target, encode_post, loop_name, percentile_ms

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
        self.ok = Counter[str]()  # successes per target name, warm-up included
        self.errors = Counter[str]()
        self.load_cpu = [0.0, 0]  # load workers' CPU seconds, requests they made

    def run(self, tgt: Target, connections: int, seconds: float, warmup: float) -> Outcome:
        outcome = self.pool.run(tgt, connections, seconds=seconds, warmup=warmup)
        self.ok[tgt.name] += outcome.ok_total
        self.errors.update({f"{tgt.name}: {k}": n for k, n in outcome.errors.items()})
        self.load_cpu[0] += outcome.cpu_seconds
        self.load_cpu[1] += outcome.ok_total + sum(outcome.errors.values())
        return outcome

    def level(self, tgt: Target, connections: int, workers: int | None) -> dict[str, Any]:
        """One measured level; prints its JSON line."""
        seconds, warmup = self.args.seconds, self.args.warmup
        before, started = self.cpu.snapshot(), time.perf_counter()
        outcome = self.run(tgt, connections, seconds, warmup)
        cores = CpuMeter.cores(before, self.cpu.snapshot(), time.perf_counter() - started)
        result = {"target": tgt.name, "workers": workers, "concurrency": connections}
        result |= stats(outcome, seconds) | {"cpu_cores": cores}
        log(
            f"  {tgt.name:9} c={connections:<3} {result['rps']:>8} req/s  p50 {result['p50_ms']} ms"
        )
        emit(result)
        return result

    def one_connection(
        self, direct: Target, gateway: Target, workers: int | None
    ) -> dict[str, Any]:
        """Direct and deskpilot at one connection in alternating rounds."""
        seconds = self.args.round_seconds
        rounds = max(2, round(self.args.seconds / seconds))
        merged = {direct.name: Outcome(), gateway.name: Outcome()}
        differences = []
        for n in range(rounds):
            p50: dict[str, float] = {}
            for tgt in (direct, gateway) if n % 2 == 0 else (gateway, direct):
                outcome = self.run(tgt, 1, seconds, self.args.round_warmup)
                merged[tgt.name].merge(outcome)
                p50[tgt.name] = statistics.median(outcome.latencies_ns or [0]) / 1e6
            differences.append(p50[gateway.name] - p50[direct.name])
        results = {}
        for tgt in (direct, gateway):
            result = {"target": tgt.name, "workers": workers, "concurrency": 1, "rounds": rounds}
            results[tgt.name] = result | stats(merged[tgt.name], rounds * seconds)
        mine, theirs = results[gateway.name], results[direct.name]
        if mine["p50_ms"] is not None and theirs["p50_ms"] is not None:
            mine["added_p50_ms"] = round(mine["p50_ms"] - theirs["p50_ms"], 3)
        mine["added_p50_ms_round_median"] = round(statistics.median(differences), 3)
        for result in results.values():
            log(f"  {result['target']:9} c=1   {result['rps']:>8} req/s  p50 {result['p50_ms']} ms")
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
    ok = bench.ok["deskpilot"]
    errors = sum(bench.errors.values())
    return {
        "direct_rps": chosen[top]["direct"]["rps"],
        "deskpilot_rps": deskpilot_rps,
        "deskpilot_rps_by_workers": {str(w): runs[w][top]["deskpilot"]["rps"] for w in runs},
        "direct_p50_ms_1conn": chosen[1]["direct"]["p50_ms"],
        "deskpilot_p50_ms_1conn": chosen[1]["deskpilot"]["p50_ms"],
        "added_p50_ms_1conn": chosen[1]["deskpilot"].get("added_p50_ms"),
        "added_p50_ms_1conn_round_median": chosen[1]["deskpilot"]["added_p50_ms_round_median"],
        "deskpilot_p99_ms_1conn": chosen[1]["deskpilot"]["p99_ms"],
        "deskpilot_p50_ms_top": chosen[top]["deskpilot"]["p50_ms"],
        "deskpilot_p99_ms_top": chosen[top]["deskpilot"]["p99_ms"],
        "concurrency": top,
        "workers": best,
        "litellm_proxy_rps_reference": LITELLM_PROXY_RPS,
        "throughput_vs_litellm": round(deskpilot_rps / LITELLM_PROXY_RPS, 1),
        "meets_added_latency_target": (chosen[1]["deskpilot"].get("added_p50_ms") or 1e9)
        <= ADDED_P50_TARGET_MS,
        "meets_throughput_target": deskpilot_rps >= THROUGHPUT_TARGET * LITELLM_PROXY_RPS,
        "usage_events": usage_events,
        "requests_ok": ok,
        "metering_complete": usage_events == ok,
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
    usage_events = None
    with deskpilot_home(upstream_port, bench.args.redis_url) as dp:
        for n, workers in enumerate(bench.args.workers):
            log(f"deskpilot serve --workers {workers} (first start runs initdb) ...")
            with dp.running(workers):
                if n == 0:
                    dp.create_tenant()
                dp.check_chat(PATH, body("bench"))
                bench.ok["deskpilot"] += 1
                gateway = target("deskpilot", dp.port, "bench", dp.key)
                bench.cpu = CpuMeter(bench_groups(bench, dp))
                runs[workers] = bench.levels(direct, gateway, workers)
                if n == len(bench.args.workers) - 1:
                    usage_events = dp.wait_for_usage_events(bench.ok["deskpilot"])
    return summary(bench, runs, usage_events)


def bench_groups(bench: Bench, dp: Deskpilot | None) -> dict[str, list[int]]:
    groups = {"load": bench.pool.pids, "upstream": [bench.upstream_pid]}
    if dp is not None:
        groups["deskpilot"] = [dp.pid]
        postmaster = dp.postmaster_pid()
        groups["postgres"] = [postmaster] if postmaster else []
    return groups


def run_profile(bench: Bench, direct: Target, upstream_port: int) -> dict[str, Any]:
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        sys.exit("--profile needs py-spy (pip install py-spy into the venv); it is not installed")
    top, out = max(bench.args.concurrency), Path(bench.args.profile_out).resolve()
    with deskpilot_home(upstream_port, bench.args.redis_url) as dp, dp.running(1):
        dp.create_tenant()
        dp.check_chat(PATH, body("bench"))
        gateway = target("deskpilot", dp.port, "bench", dp.key)
        bench.run(gateway, top, 1.0, 0.0)  # warm up before sampling starts
        seconds = bench.args.seconds
        command = [spy, "record", "--pid", str(dp.pid), "--duration", str(int(seconds) + 1)]
        command += ["--format", "raw", "--rate", "200", "--output", str(out), "--nonblocking"]
        spying = subprocess.Popen(  # noqa: S603  (py-spy found on PATH, fixed arguments)
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(0.5)
        result = stats(bench.run(gateway, top, seconds, 0.0), seconds)
        _, problems = spying.communicate(timeout=60)
        if spying.returncode != 0:
            sys.exit(f"py-spy failed ({spying.returncode}): {problems.decode(errors='replace')}")
    return {"profile": str(out), "concurrency": top, "workers": 1, **result, **hot_spots(out)}


def hot_spots(collapsed: Path, count: int = 15) -> dict[str, Any]:
    """Self time per function from py-spy's collapsed stacks (``frame;frame;leaf N``)."""
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        leaves[stack.rsplit(";", 1)[-1]] += int(samples)
    top = [{"frame": f, "share": round(n / total, 3)} for f, n in leaves.most_common(count)]
    return {"samples": total, "self_time_top": top}


def main(args: argparse.Namespace) -> int:
    if not args.direct_only and not serve_has_config_option():
        sys.exit(
            "deskpilot serve has no --config option in this checkout: the gateway has not "
            "landed yet (use --direct-only to measure the upstream and the load generator)"
        )
    with upstream_process() as (upstream_port, upstream_pid):
        direct = target("direct", upstream_port, "gpt-4o-mini", UPSTREAM_KEY)
        pool = LoadPool(args.load_processes)
        try:
            bench = Bench(args, pool, upstream_pid)
            if args.profile:
                emit(run_profile(bench, direct, upstream_port))
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
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--direct-only", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-out", default="gateway-profile.txt")
    args = parser.parse_args()
    if 1 not in args.concurrency:
        args.concurrency = [1, *args.concurrency]  # the added latency is defined at one
    return args


if __name__ == "__main__":
    sys.exit(main(parse_args()))
