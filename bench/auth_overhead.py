"""What credential resolution costs each request, against baselines measured in the same run.

    .venv/bin/python bench/auth_overhead.py [--rounds 2000]

Prints JSON: per-call medians (microseconds) of
- ``resolve_cached``: ``Platform.authenticate`` hitting the in-process cache (every request);
- ``resolve_uncached``: the same with the cache evicted first (one PostgreSQL round trip under
  the claimed tenant's RLS binding; happens once per key per cache lifetime);
- ``http_healthz`` vs ``http_v1_tenant``: the full ASGI stack without and with authentication
  plus one tenant-scoped read, and their ratio.
Uses its own embedded PostgreSQL in a temporary DESKPILOT_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from deskpilot.app import create_app
from deskpilot.core.context import OperatorContext, Scope
from deskpilot.core.settings import Settings
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate, TenantCreate


async def timed(call: Callable[[], Awaitable[Any]], rounds: int) -> float:
    for _ in range(min(rounds, 50)):  # warm up
        await call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


async def main(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.model_validate(
            {"DESKPILOT_HOME": home, "DESKPILOT_ADMIN_TOKEN": "dpo_" + "b" * 48}
        )
        async with await Platform.open(settings) as platform:
            slug = f"bench-{uuid.uuid4().hex[:8]}"
            admin = platform.admin(OperatorContext("bench"))
            await admin.create_tenant(TenantCreate(tenant_id=slug, display_name="Bench"))
            handle = await admin.on_tenant(slug)
            key = (
                await handle.keys.create(KeyCreate(name="b", scopes=(Scope.TENANT_ADMIN,)))
            ).secret

            async def uncached() -> None:
                platform.resolver.evict(slug)
                await platform.authenticate(key)

            results = {
                "resolve_cached_us": await timed(lambda: platform.authenticate(key), rounds),
                "resolve_uncached_us": await timed(uncached, max(rounds // 4, 50)),
            }
            app = create_app(platform=platform)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers = {"Authorization": f"Bearer {key}"}
                results["http_healthz_us"] = await timed(lambda: client.get("/healthz"), rounds)
                results["http_v1_tenant_us"] = await timed(
                    lambda: client.get("/v1/tenant", headers=headers), rounds
                )
    results = {k: round(v, 1) for k, v in results.items()}
    results["http_auth_plus_read_ratio"] = round(
        results["http_v1_tenant_us"] / results["http_healthz_us"], 2
    )
    results["rounds"] = rounds
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rounds)), indent=2))
