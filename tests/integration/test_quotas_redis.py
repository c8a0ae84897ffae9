"""The Redis backend's mirrors of PostgreSQL: reloaded after Redis loses its state, kept
current by the Meter's hook, and every key under the tenant's hash tag."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from deskpilot.core.context import TenantContext
from deskpilot.core.frozen import freeze, thaw
from deskpilot.core.redis import purge_tenant_keys, tenant_pattern
from deskpilot.metering import Meter, PriceTable, UsageEvent
from deskpilot.platform import Platform
from deskpilot.quotas import Delta, Dimension, QuotaExceeded, period_bounds, window_for
from deskpilot.quotas.redis_backend import quota_keys
from deskpilot.quotas.repository import CounterRepo
from tests.conftest import TenantFixture
from tests.integration.test_quotas_support import Quotas, limited, quotas_for

pytestmark = pytest.mark.redis

SPEND = Dimension.SPEND_PER_PERIOD


@pytest.fixture
async def quotas(platform: Platform, redis_url: str) -> AsyncIterator[Quotas]:
    async with quotas_for(platform, "redis", redis_url) as opened:
        yield opened


@pytest.fixture
async def meter(platform: Platform, quotas: Quotas) -> AsyncIterator[Meter]:
    opened = Meter(quotas.resources, PriceTable.load())
    opened.on_durable(quotas.service.on_durable)
    try:
        yield opened
    finally:
        await opened.close()


def at_cost(tenant: TenantContext) -> TenantContext:
    """Billed amount == provider cost (no markup), so spend is what the test records."""
    config = thaw(tenant.config)
    config["billing"] = {"markup_percent": "0"}
    return replace(tenant, config=freeze(config))


async def spend(meter: Meter, tenant: TenantContext, amount: str) -> None:
    event = UsageEvent(
        component="gateway",
        operation="chat",
        request_id=f"spend-{amount}-{datetime.now(UTC).timestamp()}",
        provider="test",
        provider_model="m",
        input_tokens=1,
        provider_cost=Decimal(amount),
    )
    await meter.record(event, tenant=tenant)


def spend_mirror(tenant: TenantContext) -> str:
    start, _ = period_bounds(tenant.billing_anchor_day, datetime.now(UTC))
    return quota_keys(SPEND, start, tenant=tenant)[0]


async def test_spend_limit_holds_after_redis_loses_its_state(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture
) -> None:
    tenant = at_cost(limited(tenant_a.context, spend_per_period="10"))
    service = quotas.service
    await spend(meter, tenant, "9.5")
    with pytest.raises(QuotaExceeded) as refused:
        await service.reserve(tenant=tenant, request_id="a", amounts={SPEND: 1})
    assert refused.value.used == Decimal("9.5")
    await service.settle(
        await service.reserve(tenant=tenant, request_id="b", amounts={SPEND: Decimal("0.5")}),
        tenant=tenant,
    )
    await purge_tenant_keys(quotas.resources, tenant=tenant)  # Redis restarted: nothing left
    assert await quotas.redis.exists(spend_mirror(tenant)) == 0
    with pytest.raises(QuotaExceeded) as again:
        await service.reserve(tenant=tenant, request_id="c", amounts={SPEND: 1})
    assert again.value.used == Decimal("9.5")  # reloaded from quota_counters
    assert 0 < await quotas.redis.pttl(spend_mirror(tenant)) <= 300_000


async def test_meter_hook_keeps_the_mirror_current(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture
) -> None:
    tenant = at_cost(limited(tenant_a.context, spend_per_period="10"))
    service = quotas.service
    first = await service.reserve(tenant=tenant, request_id="a", amounts={SPEND: 1})
    await service.settle(first, tenant=tenant)  # the mirror is loaded (0 spent)
    await spend(meter, tenant, "9.5")
    for _ in range(100):  # the hook runs on the Meter's writer task, just after the commit
        if await quotas.redis.get(spend_mirror(tenant)) == b"9500000":
            break
        await asyncio.sleep(0.05)
    with pytest.raises(QuotaExceeded) as refused:
        await service.reserve(tenant=tenant, request_id="b", amounts={SPEND: 1})
    assert refused.value.used == Decimal("9.5")


async def test_durable_changes_never_create_a_mirror(
    quotas: Quotas, tenant_a: TenantFixture
) -> None:
    tenant = tenant_a.context
    start, _ = period_bounds(tenant.billing_anchor_day, datetime.now(UTC))
    await quotas.service.on_durable(tenant.tenant_id, [Delta(SPEND.value, start, Decimal(3))])
    assert await quotas.redis.exists(spend_mirror(tenant)) == 0


async def test_agent_runs_per_day_survive_losing_redis_state(
    quotas: Quotas, platform: Platform, tenant_a: TenantFixture
) -> None:
    runs = Dimension.AGENT_RUNS_PER_DAY
    tenant = limited(tenant_a.context, agent_runs_per_day=3)
    for i in range(3):
        await quotas.service.reserve(tenant=tenant, request_id=f"run{i}", amounts={runs: 1})
    start, end = window_for(runs, anchor_day=1, at=datetime.now(UTC))
    async with platform.resources.db.tenant_session(tenant=tenant) as session:
        durable = await CounterRepo(session).read([(runs, start, end)], tenant=tenant)
    assert durable == {(runs, start): 3}
    await purge_tenant_keys(quotas.resources, tenant=tenant)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.service.reserve(tenant=tenant, request_id="run4", amounts={runs: 1})
    assert refused.value.used == 3


async def test_every_key_carries_the_tenant_hash_tag(
    quotas: Quotas, tenant_a: TenantFixture
) -> None:
    tenant = limited(
        tenant_a.context,
        requests_per_minute=10,
        tokens_per_minute=1000,
        spend_per_period="5",
        concurrent_agent_runs=3,
        agent_runs_per_day=5,
    )
    amounts = {
        Dimension.REQUESTS_PER_MINUTE: 1,
        Dimension.TOKENS_PER_MINUTE: 10,
        SPEND: Decimal("0.01"),
        Dimension.CONCURRENT_AGENT_RUNS: 1,
        Dimension.AGENT_RUNS_PER_DAY: 1,
    }
    await quotas.service.reserve(tenant=tenant, request_id="r", amounts=amounts)
    tagged = {k async for k in quotas.redis.scan_iter(match=tenant_pattern(tenant))}
    mentioning = {k async for k in quotas.redis.scan_iter(match=f"*{tenant.tenant_id}*")}
    assert len(tagged) >= 10  # used mirrors/counts and the hold keys
    assert mentioning == tagged
    assert all(k.startswith(f"dp:{{{tenant.tenant_id}}}:quota:".encode()) for k in tagged)
