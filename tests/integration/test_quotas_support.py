"""Helpers shared by the quota tests (this module holds no tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from deskpilot.core.context import TenantContext
from deskpilot.core.frozen import freeze, thaw
from deskpilot.core.resources import Resources
from deskpilot.platform import Platform
from deskpilot.quotas import QuotaExceeded, QuotaService, Reservation, quota_backend

BACKENDS = ("postgres", "redis")


def limited(
    tenant: TenantContext,
    *,
    anchor_day: int | None = None,
    soft_threshold: str = "0.8",
    **limits: int | str | Decimal,
) -> TenantContext:
    """The tenant with exactly these quota limits (every other dimension unlimited)."""
    config: dict[str, Any] = thaw(tenant.config)
    config["quotas"] = {"soft_threshold": soft_threshold, **{k: str(v) for k, v in limits.items()}}
    return replace(
        tenant,
        config=freeze(config),
        billing_anchor_day=anchor_day or tenant.billing_anchor_day,
    )


async def open_redis_client(url: str) -> Redis:
    """The test Redis; a missing server fails the test (never skips it)."""
    client: Redis = Redis.from_url(url)
    await client.ping()
    return client


@dataclass
class Quotas:
    service: QuotaService
    backend: str
    resources: Resources

    @property
    def redis(self) -> Redis:
        assert self.resources.redis is not None
        return self.resources.redis


@asynccontextmanager
async def quotas_for(platform: Platform, backend: str, redis_url: str) -> AsyncIterator[Quotas]:
    resources = platform.resources
    client = None
    if backend == "redis":
        client = await open_redis_client(redis_url)
        resources = replace(resources, redis=client)
    try:
        yield Quotas(QuotaService(resources, quota_backend(resources)), backend, resources)
    finally:
        if client is not None:
            await client.aclose()


def used_of(statuses: list[Any], dimension: Any) -> Mapping[str, Any]:
    found = [s for s in statuses if s.dimension is dimension]
    assert len(found) == 1, statuses
    status = found[0]
    return {"used": status.used, "held": status.held, "state": status.state}


async def outcomes(calls: list[asyncio.Future[Reservation]]) -> tuple[int, int]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    granted = sum(isinstance(r, Reservation) for r in results)
    refused = sum(isinstance(r, QuotaExceeded) for r in results)
    assert granted + refused == len(results), {
        type(r).__name__ + repr(r)[:300]
        for r in results
        if not isinstance(r, Reservation | QuotaExceeded)
    }
    return granted, refused
