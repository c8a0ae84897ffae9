"""Optional Redis: the client, and the one function that builds tenant-owned Redis keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import SetupError
from deskpilot.core.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from deskpilot.core.resources import Resources


async def open_redis(settings: Settings) -> Redis | None:
    """A connected client, or None when ``REDIS_URL`` is unset."""
    if settings.redis_url is None:
        return None
    from redis.asyncio import BlockingConnectionPool, Redis

    # Blocking: a burst waits (up to the timeout) for a free connection instead of failing
    # with "too many connections".
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(), max_connections=64, timeout=5
    )
    client: Redis = Redis.from_pool(pool)  # the client owns (and closes) the pool
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise SetupError(
            f"cannot reach Redis at REDIS_URL: {exc}. Start Redis, fix the URL, or unset "
            "REDIS_URL to run with in-process caches (one process only)."
        ) from exc
    return client


def tenant_key(store: str, *parts: str, tenant: TenantContext) -> str:
    """``dp:{<tenant>}:<store>:<parts...>``. The braces are a Redis Cluster hash tag, so all of
    a tenant's keys live in one slot; every Redis key a component writes is built here."""
    if not store or ":" in store:
        raise ValueError(f"invalid store name {store!r}")
    return ":".join(("dp", "{" + tenant.tenant_id + "}", store, *parts))


def tenant_pattern(tenant: TenantContext) -> str:
    """SCAN pattern matching every key of one tenant (for purge)."""
    return "dp:{" + tenant.tenant_id + "}:*"


async def purge_tenant_keys(resources: Resources, *, tenant: TenantContext) -> None:
    """Purge step: delete every Redis key of the tenant (all built by ``tenant_key``)."""
    redis = resources.redis
    if redis is None:
        return
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=tenant_pattern(tenant), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await redis.unlink(*batch)
            batch.clear()
    if batch:
        await redis.unlink(*batch)
