"""What a quota reservation costs: one reserve + settle pair, PostgreSQL vs Redis backend.

    .venv/bin/python bench/quotas.py [--rounds 2000]

Uses its own embedded PostgreSQL in a temporary DESKPILOT_HOME and the Redis at REDIS_URL
(default redis://127.0.0.1:6379/15; only this run's tenant keys are written and removed).
Prints one JSON line of per-pair medians (microseconds), sequential calls from one task:

- ``reserve_settle_us_postgres`` / ``reserve_settle_us_redis``: one token budget
  (tokens_per_period), the common case of an LLM call;
- ``..._agent_run``: an agent run (agent_runs_per_day + concurrent_agent_runs); with Redis
  this includes the PostgreSQL upsert that keeps the daily count durable;
- ``..._slot_only``: concurrent_agent_runs alone, the Redis baseline for that upsert's cost
  (``redis_agent_run_persist_us`` is the difference).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.frozen import freeze, thaw
from deskpilot.core.redis import purge_tenant_keys
from deskpilot.core.resources import Resources
from deskpilot.core.settings import Settings
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension, PostgresQuotaBackend, QuotaService, RedisQuotaBackend
from deskpilot.tenancy import TenantCreate

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
LIMITS = {
    "tokens_per_period": 10**15,
    "agent_runs_per_day": 10**12,
    "concurrent_agent_runs": 10**6,
}
CASES: dict[str, Mapping[Dimension, int]] = {
    "": {Dimension.TOKENS_PER_PERIOD: 100},
    "_agent_run": {Dimension.AGENT_RUNS_PER_DAY: 1, Dimension.CONCURRENT_AGENT_RUNS: 1},
    "_slot_only": {Dimension.CONCURRENT_AGENT_RUNS: 1},
}


async def pair_us(
    service: QuotaService, tenant: TenantContext, amounts: Mapping[Dimension, int], rounds: int
) -> float:
    async def pair() -> None:
        reservation = await service.reserve(tenant=tenant, request_id="bench", amounts=amounts)
        await service.settle(reservation, tenant=tenant)

    for _ in range(min(rounds, 100)):  # warm up (connections, script cache, mirrors)
        await pair()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await pair()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


async def bench_tenant(platform: Platform) -> TenantContext:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    admin = platform.admin(OperatorContext("bench"))
    await admin.create_tenant(TenantCreate(tenant_id=slug, display_name="Bench"))
    context = await admin.context_for(slug)
    config: dict[str, Any] = thaw(context.config)
    config["quotas"] = LIMITS
    return replace(context, config=freeze(config))


async def main(rounds: int) -> dict[str, Any]:
    from redis.asyncio import Redis

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.model_validate(
            {"DESKPILOT_HOME": home, "DESKPILOT_ADMIN_TOKEN": "dpo_" + "q" * 48}
        )
        async with await Platform.open(settings) as platform:
            tenant = await bench_tenant(platform)
            redis: Redis = Redis.from_url(REDIS_URL)
            await redis.ping()
            resources: Resources = replace(platform.resources, redis=redis)
            backends = {
                "postgres": PostgresQuotaBackend(resources.db),
                "redis": RedisQuotaBackend(redis, resources.db),
            }
            try:
                for name, backend in backends.items():
                    service = QuotaService(resources, backend)
                    for suffix, amounts in CASES.items():
                        key = f"reserve_settle_us_{name}{suffix}"
                        results[key] = round(await pair_us(service, tenant, amounts, rounds), 1)
            finally:
                await purge_tenant_keys(resources, tenant=tenant)
                await redis.aclose()
    results["redis_agent_run_persist_us"] = round(
        results["reserve_settle_us_redis_agent_run"] - results["reserve_settle_us_redis_slot_only"],
        1,
    )
    results["postgres_over_redis"] = round(
        results["reserve_settle_us_postgres"] / results["reserve_settle_us_redis"], 2
    )
    results["rounds"] = rounds
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.rounds)), default=str))
