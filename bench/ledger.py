"""Durable usage events per second: the group-commit Meter against one transaction per event.

    .venv/bin/python bench/ledger.py [--writers 64] [--events 20000] [--tenants 4]
                                     [--quota-rounds 2000]

Both runs use the same workload in the same process and database: ``--writers`` concurrent
tasks, each recording events one after another (an event counts once ``Meter.record``
returned, i.e. once it is committed), spread over ``--tenants`` tenants and a few models.
The baseline is a Meter with ``max_batch=1`` (one transaction, one WAL flush per event).
PostgreSQL runs with its durable defaults (fsync, synchronous_commit on).

Then the quota section (bench/quotas.py): the median cost of one reserve + settle pair with
the PostgreSQL backend and with the Redis one (REDIS_URL, default redis://127.0.0.1:6379/15).

Prints JSON; the last line is one object with ``group_commit_events_per_s``,
``per_event_commit_events_per_s``, ``ratio``, ``p50_ms`` and ``p99_ms`` (group-commit write
latency), batches and mean batch size, ``reserve_settle_us_postgres`` and
``reserve_settle_us_redis``. Uses its own embedded PostgreSQL in a temporary DESKPILOT_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.settings import Settings
from deskpilot.metering import Meter, PriceTable, UsageEvent, ensure_partitions
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import TenantCreate

MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4.1-mini"), ("anthropic", "claude-sonnet-4"))


def event(run: str, n: int) -> UsageEvent:
    provider, model = MODELS[n % len(MODELS)]
    return UsageEvent(
        component="gateway",
        operation="chat",
        request_id=f"{run}-{n}",
        provider=provider,
        provider_model=model,
        input_tokens=500 + n % 1000,
        output_tokens=100 + n % 300,
        cached_tokens=n % 200,
        latency_ms=120,
    )


sys.path.insert(0, str(Path(__file__).resolve().parent))
import quotas as quota_bench  # noqa: E402  (bench/quotas.py, a sibling script)


async def workload(
    meter: Meter, tenants: list[TenantContext], *, run: str, writers: int, events: int
) -> dict[str, Any]:
    """``events`` records by ``writers`` tasks; returns events/s and latencies (ms)."""
    latencies: list[float] = []
    next_n = iter(range(events))

    async def writer() -> None:
        for n in next_n:
            started = time.perf_counter()
            await meter.record(event(run, n), tenant=tenants[n % len(tenants)])
            latencies.append((time.perf_counter() - started) * 1000)

    batches_before = meter.stats.batches
    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - started
    batches = meter.stats.batches - batches_before
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "events_per_s": round(events / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(quantiles[98], 2),
        "batches": batches,
        "mean_batch": round(events / batches, 1),
    }


async def measure(
    platform: Platform, tenants: list[TenantContext], *, max_batch: int, **load: int
) -> dict[str, Any]:
    meter = Meter(platform.resources, PriceTable.load(), max_batch=max_batch)
    try:
        await workload(meter, tenants, run=f"warm-{uuid.uuid4().hex[:6]}", writers=8, events=400)
        return await workload(meter, tenants, run=uuid.uuid4().hex[:8], **load)
    finally:
        await meter.close()


async def ledger_section(
    platform: Platform, *, writers: int, events: int, tenants: int
) -> dict[str, Any]:
    admin = platform.admin(OperatorContext("bench"))
    contexts = []
    for i in range(tenants):
        slug = f"bench-{i}-{uuid.uuid4().hex[:6]}"
        await admin.create_tenant(TenantCreate(tenant_id=slug, display_name="Bench", tier="pro"))
        contexts.append(await admin.context_for(slug))
    await ensure_partitions(platform.resources.db, datetime.now(UTC))
    grouped = await measure(platform, contexts, max_batch=1000, writers=writers, events=events)
    single = await measure(platform, contexts, max_batch=1, writers=writers, events=events)
    return {
        "group_commit_events_per_s": grouped["events_per_s"],
        "per_event_commit_events_per_s": single["events_per_s"],
        "ratio": round(grouped["events_per_s"] / single["events_per_s"], 1),
        "p50_ms": grouped["p50_ms"],  # write latency through the group-commit path
        "p99_ms": grouped["p99_ms"],
        "group_commit_batches": grouped["batches"],
        "group_commit_mean_batch": grouped["mean_batch"],
        "per_event_commit_p50_ms": single["p50_ms"],
        "writers": writers,
        "events": events,
        "tenants": tenants,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.model_validate(
            {"DESKPILOT_HOME": home, "DESKPILOT_ADMIN_TOKEN": "dpo_" + "b" * 48}
        )
        async with await Platform.open(settings) as platform:
            results.update(
                await ledger_section(
                    platform, writers=args.writers, events=args.events, tenants=args.tenants
                )
            )
    # The quota section: one reserve + settle pair, PostgreSQL vs Redis (bench/quotas.py).
    results.update(await quota_bench.main(args.quota_rounds))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--quota-rounds", type=int, default=2000)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
