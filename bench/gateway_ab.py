"""Two checkouts of deskpilot against each other: the gateway's added latency and its CPU per
request, in alternating rounds, so the machine's noise (shared, 2 cores) hits both alike.

    .venv/bin/python bench/gateway_ab.py --base /path/to/other/checkout [--seconds 10]
                                         [--concurrency 1]

``--base`` is another checkout of this repository (e.g. ``git worktree add /tmp/base HEAD~1``);
its ``src`` is put first on ``PYTHONPATH`` of its server, so both run with this venv's
dependencies. Each side is a real ``deskpilot serve --workers 1`` (bench/gateway_server.py) on
a fresh DESKPILOT_HOME with its own Redis database (12 and 13, flushed), behind the same
loopback upstream. Rounds of 0.5 s go through both sides and the direct upstream (the order
reversed every other round), in two phases: the servers are started base first, then again
new first on swapped Redis databases, so whatever favours one start position cancels out.

Prints one JSON line: per side the median of the rounds' p50 latency, the added latency over
the direct upstream, requests/s, deskpilot CPU and PostgreSQL CPU per request, and
``new_minus_base_ms`` (median of the per-round differences) and ``cpu_ratio_new_vs_base``.
A checkout against itself (an A/A run) shows the harness's own spread on the 2-core machine:
0.06-0.07 ms and 2% CPU (with one phase only, before the swapped second one: 0.3 ms, 12%).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_server import UPSTREAM_KEY, deskpilot_home, upstream_process
from loadgen import LoadPool, Target
from procstat import CpuMeter

from gateway import target  # bench/gateway.py

HERE = Path(__file__).resolve().parents[1]
ROUND_SECONDS = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per side")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    if not (args.base / "src" / "deskpilot").is_dir():
        sys.exit(f"{args.base} is not a deskpilot checkout (no src/deskpilot)")
    print(json.dumps(compare(args.base.resolve(), args.seconds, args.concurrency)))


def compare(base: Path, seconds: float, connections: int) -> dict[str, Any]:
    """Two phases, the servers started in opposite orders (and on swapped Redis databases), so
    that whatever favours the first or second one started cancels out."""
    sides = {"base": base / "src", "new": HERE / "src"}
    p50s: dict[str, list[float]] = {"base": [], "new": [], "direct": []}
    rps: dict[str, list[float]] = {name: [] for name in p50s}
    spent: dict[str, list[float]] = {"base": [0.0, 0.0, 0.0], "new": [0.0, 0.0, 0.0]}
    rounds = max(2, round(seconds / ROUND_SECONDS / 2))
    with upstream_process() as (port, _):
        pool = LoadPool(1)
        for first in ("base", "new"):
            order = [first, *(name for name in sides if name != first)]
            with contextlib.ExitStack() as stack:
                targets: dict[str, Target] = {}
                groups: dict[str, list[int]] = {}
                for db, name in zip((12, 13), order, strict=True):
                    os.environ["PYTHONPATH"] = str(sides[name])  # read when its server starts
                    server = stack.enter_context(
                        deskpilot_home(port, f"redis://127.0.0.1:6379/{db}")
                    )
                    stack.enter_context(server.running(1))
                    targets[name] = target(name, server.port, "bench", server.create_tenant())
                    groups[name] = [server.pid]
                    postmaster = server.postmaster_pid()
                    groups[f"{name}_postgres"] = [postmaster] if postmaster else []
                os.environ.pop("PYTHONPATH", None)
                targets["direct"] = target("direct", port, "gpt-4o-mini", UPSTREAM_KEY)
                measure(pool, targets, CpuMeter(groups), connections, rounds, p50s, rps, spent)
    return summarise(p50s, rps, spent, connections)


def measure(
    pool: LoadPool,
    targets: dict[str, Target],
    cpu: CpuMeter,
    connections: int,
    rounds: int,
    p50s: dict[str, list[float]],
    rps: dict[str, list[float]],
    spent: dict[str, list[float]],
) -> None:
    for tgt in targets.values():
        pool.run(tgt, connections, seconds=1, warmup=0.3)
    order = list(targets)
    for n in range(rounds):
        for name in order if n % 2 == 0 else reversed(order):
            before = cpu.snapshot()
            outcome = pool.run(targets[name], connections, seconds=ROUND_SECONDS, warmup=0.1)
            used = CpuMeter.spent(before, cpu.snapshot())
            p50s[name].append(statistics.median(outcome.latencies_ns or [0]) / 1e6)
            rps[name].append(len(outcome.latencies_ns) / ROUND_SECONDS)
            if name in spent:
                spent[name][0] += used[name]
                spent[name][1] += used[f"{name}_postgres"]
                spent[name][2] += outcome.ok_total


def summarise(
    p50s: dict[str, list[float]],
    rps: dict[str, list[float]],
    spent: dict[str, list[float]],
    connections: int,
) -> dict[str, Any]:
    median = {name: statistics.median(values) for name, values in p50s.items()}
    result: dict[str, Any] = {"concurrency": connections, "rounds": len(p50s["new"])}
    for name in p50s:
        result[f"{name}_p50_ms"] = round(median[name], 3)
        result[f"{name}_rps"] = round(statistics.median(rps[name]), 1)
    for name, (own, postgres, requests) in spent.items():
        result[f"{name}_added_p50_ms"] = round(median[name] - median["direct"], 3)
        result[f"{name}_cpu_us_per_request"] = round(own / requests * 1e6) if requests else None
        result[f"{name}_postgres_cpu_us_per_request"] = (
            round(postgres / requests * 1e6) if requests else None
        )
    differences = [n - b for n, b in zip(p50s["new"], p50s["base"], strict=True)]
    result["new_minus_base_ms"] = round(statistics.median(differences), 3)
    if result["base_cpu_us_per_request"] and result["new_cpu_us_per_request"]:
        result["cpu_ratio_new_vs_base"] = round(
            result["new_cpu_us_per_request"] / result["base_cpu_us_per_request"], 3
        )
    return result


if __name__ == "__main__":
    main()
