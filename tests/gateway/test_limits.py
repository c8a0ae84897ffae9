"""A deployment's own rpm/tpm: admitted within the minute, refused past it, reset next minute;
in one process, and shared by every process through (real) Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from deskpilot.core.context import TenantContext
from deskpilot.core.redis import purge_tenant_keys, tenant_pattern
from deskpilot.gateway import Deployment, ErrorKind, ProviderError
from deskpilot.gateway.limits import KEY_PREFIX, DeploymentLimits, Limits, RedisDeploymentLimits
from tests.gateway.support import ManualClock

BASE = "http://upstream.test/v1"
KINDS = ["process", pytest.param("redis", marks=pytest.mark.redis)]
Factory = Callable[[ManualClock], Limits]


@pytest.fixture(params=KINDS)
async def make(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Factory]:
    if request.param == "process":
        yield lambda clock: DeploymentLimits(clock=clock)
        return
    client: Redis = Redis.from_url(redis_url)
    try:
        yield lambda clock: RedisDeploymentLimits(client, clock=clock)
    finally:
        async for key in client.scan_iter(match=f"{KEY_PREFIX}:*"):
            await client.delete(key)
        await client.aclose()


def deployment(**limits: int) -> Deployment:
    # a name of its own per test: Redis counts outlive a test's process
    return Deployment(name=f"d-{uuid.uuid4().hex[:8]}", model="m", api_base=BASE, **limits)


async def test_rpm_refuses_past_the_limit_until_the_next_minute(make: Factory) -> None:
    clock = ManualClock(now=600.0)
    limits = make(clock)
    limited = deployment(rpm=2)
    await limits.admit(limited)
    await limits.admit(limited)
    with pytest.raises(ProviderError) as refused:
        await limits.admit(limited)
    assert refused.value.kind is ErrorKind.RATE_LIMITED
    assert refused.value.retry_after == 60
    clock.advance(45)
    with pytest.raises(ProviderError) as later:
        await limits.admit(limited)
    assert later.value.retry_after == 15
    clock.advance(15)
    await limits.admit(limited)  # a new minute


async def test_tpm_counts_the_tokens_spent(make: Factory) -> None:
    clock = ManualClock(now=600.0)
    limits = make(clock)
    limited = deployment(tpm=1000)
    await limits.admit(limited)
    await limits.spent(limited, 999)
    await limits.admit(limited)  # 999 < 1000: still admitted
    await limits.spent(limited, 5)
    with pytest.raises(ProviderError):
        await limits.admit(limited)


@pytest.mark.redis
async def test_processes_sharing_redis_share_the_limit(redis_url: str) -> None:
    """Two gateways (two processes' worth of clients) on one deployment: rpm 3 in total."""
    clock = ManualClock(now=600.0)
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    try:
        first, second = (RedisDeploymentLimits(c, clock=clock) for c in clients)
        limited = deployment(rpm=3)
        await first.admit(limited)
        await second.admit(limited)
        await first.admit(limited)
        for limits in (first, second):
            with pytest.raises(ProviderError):
                await limits.admit(limited)
    finally:
        for client in clients:
            await client.aclose()


async def test_deployments_without_limits_are_never_counted() -> None:
    limits = DeploymentLimits()
    unlimited = deployment()
    for _ in range(10_000):
        await limits.admit(unlimited)
    assert limits._minutes == {}


async def test_an_unreachable_redis_admits() -> None:
    client: Redis = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    try:
        await RedisDeploymentLimits(client).admit(deployment(rpm=1))
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_tenants_own_key_counts_are_the_tenants(redis_url: str) -> None:
    """Counted under the tenant's key prefix (its Cluster slot), apart from the operator's
    counts of the same deployment, and gone with the tenant's keys."""
    tenant = TenantContext(
        tenant_id=f"own-{uuid.uuid4().hex[:8]}",
        tier="enterprise",
        config={},
        principal="test",
        scopes=frozenset(),
    )
    client: Redis = Redis.from_url(redis_url)
    try:
        limits = RedisDeploymentLimits(client, clock=ManualClock(now=600.0))
        limited = deployment(rpm=1)
        await limits.admit(limited, owner=tenant)
        await limits.admit(limited)  # the operator's count of the same deployment is apart
        with pytest.raises(ProviderError):
            await limits.admit(limited, owner=tenant)
        own = [key async for key in client.scan_iter(match=tenant_pattern(tenant))]
        assert [k.decode().split(":")[2] for k in own] == ["gateway-limits"]
        resources = SimpleNamespace(redis=client)
        await purge_tenant_keys(resources, tenant=tenant)  # type: ignore[arg-type]
        assert [key async for key in client.scan_iter(match=tenant_pattern(tenant))] == []
        await limits.admit(limited, owner=tenant)  # a fresh count after the purge
    finally:
        async for key in client.scan_iter(match=f"{KEY_PREFIX}:*"):
            await client.delete(key)
        await client.aclose()
