"""What one quota script call costs the client: redis-py's ``register_script`` vs ``HotScripts``.

    .venv/bin/python bench/redis_script.py [--calls 3000] [--rounds 6]

Runs the quota reserve script as the gateway does before every LLM call (four dimensions:
16 keys, 21 arguments), in peek mode on holds-only dimensions, so nothing is written, against
the Redis at REDIS_URL (default redis://127.0.0.1:6379/15). Both clients run in this process on
one uvloop loop, in alternating rounds (the machine's noise hits both alike), sequential calls
from one task. Per round: the median latency of a call and the process CPU per call.

Prints one JSON line: per client the median over rounds of ``p50_us`` and ``cpu_us_per_call``,
and the ratios hot / registered (below 1: HotScripts is cheaper).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from redis.asyncio import BlockingConnectionPool, Redis

from deskpilot.core.redis import HotScripts
from deskpilot.quotas import lua

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
DIMENSIONS = ("requests_per_minute", "tokens_per_minute", "tokens_per_period", "spend_per_period")


def reserve_shape() -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of a four-dimension reserve, peek mode ("0"), holds only ("h")."""
    now = int(time.time() * 1000)
    keys = [
        f"dp:{{bench-script}}:quota:{d}:20261125T000000Z:{suffix}"
        for d in DIMENSIONS
        for suffix in ("used", "holds", "amounts", "held")
    ]
    args: list[str | int] = [now, "0" * 32, now + 120_000, 180_000, "0"]
    for _ in DIMENSIONS:
        args += ["h", 1_000_000, 100, 120_000]
    return keys, args


async def measure(call: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    latencies = []
    cpu = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    return statistics.median(latencies) * 1e6, cpu / calls * 1e6


async def run(calls: int, rounds: int) -> dict[str, Any]:
    pool = BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=5)
    client = Redis.from_pool(pool)  # as deskpilot opens it (core/redis.open_redis)
    try:
        keys, args = reserve_shape()
        registered = client.register_script(lua.RESERVE)
        hot = HotScripts(client).script(lua.RESERVE)
        clients: dict[str, Callable[[], Awaitable[Any]]] = {
            "registered": lambda: registered(keys=keys, args=args),
            "hot": lambda: hot(keys=keys, args=args),
        }
        assert [r[:1] for r in (await clients["registered"](), await clients["hot"]())] == [
            [b"ok"],
            [b"ok"],
        ]
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for call in clients.values():  # warm up
            await measure(call, calls // 5)
        for n in range(rounds):
            for name in clients if n % 2 == 0 else reversed(list(clients)):
                results[name].append(await measure(clients[name], calls))
    finally:
        await client.aclose()
    summary: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds}
    for name, samples in results.items():
        summary[f"{name}_p50_us"] = round(statistics.median(s[0] for s in samples), 1)
        summary[f"{name}_cpu_us_per_call"] = round(statistics.median(s[1] for s in samples), 1)
    summary["p50_ratio_hot_vs_registered"] = round(
        summary["hot_p50_us"] / summary["registered_p50_us"], 3
    )
    summary["cpu_ratio_hot_vs_registered"] = round(
        summary["hot_cpu_us_per_call"] / summary["registered_cpu_us_per_call"], 3
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args.calls, args.rounds))))


if __name__ == "__main__":
    main()
