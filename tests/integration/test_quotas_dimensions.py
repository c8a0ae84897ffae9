"""Each kind of dimension: gauges, billing periods, requests per minute, agent runs per day;
each test run against the PostgreSQL and the Redis backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from deskpilot.platform import Platform
from deskpilot.quotas import Dimension, QuotaExceeded, QuotaState, period_bounds
from tests.conftest import TenantFixture
from tests.integration.test_quotas_support import Quotas, limited, outcomes, quotas_for, used_of

TPP = Dimension.TOKENS_PER_PERIOD
RUNS = Dimension.CONCURRENT_AGENT_RUNS


@pytest.fixture(params=["postgres", pytest.param("redis", marks=pytest.mark.redis)])
async def quotas(
    request: pytest.FixtureRequest, platform: Platform, redis_url: str
) -> AsyncIterator[Quotas]:
    async with quotas_for(platform, request.param, redis_url) as opened:
        yield opened


async def test_gauges_count_stored_amounts(quotas: Quotas, tenant_a: TenantFixture) -> None:
    docs = Dimension.DOCUMENTS
    tenant = limited(tenant_a.context, documents=100)
    service = quotas.service
    assert await service.adjust_gauge(tenant=tenant, dimension=docs, delta=90) == 90
    batch = await service.reserve(tenant=tenant, request_id="ingest", amounts={docs: 10})
    with pytest.raises(QuotaExceeded) as refused:
        await service.reserve(tenant=tenant, request_id="more", amounts={docs: 1})
    assert (refused.value.used, refused.value.reset_at) == (100, None)
    assert await service.adjust_gauge(tenant=tenant, dimension=docs, delta=-40) == 50
    await service.settle(batch, tenant=tenant)
    assert used_of(await service.status(tenant=tenant), docs) == {
        "used": 50,
        "held": 0,
        "state": QuotaState.OK,
    }
    await service.set_gauge(tenant=tenant, dimension=docs, value=99)
    assert used_of(await service.status(tenant=tenant), docs)["used"] == 99
    await service.reserve(tenant=tenant, request_id="last", amounts={docs: 1})
    assert await service.adjust_gauge(tenant=tenant, dimension=docs, delta=-1000) == 0
    with pytest.raises(ValueError, match="gauge"):
        await service.adjust_gauge(tenant=tenant, dimension=TPP, delta=1)


async def test_period_window_follows_the_anchor_day(
    quotas: Quotas, tenant_a: TenantFixture
) -> None:
    now = datetime.now(UTC)
    anchor = 28 if now.day != 28 else 27
    tenant = limited(tenant_a.context, anchor_day=anchor, spend_per_period="5")
    spend = Dimension.SPEND_PER_PERIOD
    reservation = await quotas.service.reserve(
        tenant=tenant, request_id="r", amounts={spend: Decimal("1.25")}
    )
    start, end = period_bounds(anchor, now)
    assert start.day == anchor
    [hold] = reservation.holds
    assert (hold.window_start, hold.window_end, hold.amount) == (start, end, Decimal("1.25"))
    [status] = await quotas.service.status(tenant=tenant)
    assert (status.window_start, status.window_end, status.used) == (start, end, Decimal("1.25"))


async def _at_most_50s_into_a_minute() -> None:
    """Leave a minute test at least 10 s before the minute ends (no flakes at the boundary)."""
    now = datetime.now(UTC)
    if now.second >= 50:
        await asyncio.sleep(60.5 - now.second - now.microsecond / 1e6)


async def test_requests_per_minute_refuses_the_61st(
    quotas: Quotas, tenant_a: TenantFixture
) -> None:
    rpm = Dimension.REQUESTS_PER_MINUTE
    tenant = limited(tenant_a.context, requests_per_minute=60)
    service = quotas.service
    await _at_most_50s_into_a_minute()
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    first = await service.reserve(tenant=tenant, request_id="r0", amounts={rpm: 1})
    assert first.holds == ()  # counted, not held
    await service.release(first, tenant=tenant)  # a granted request counts even if released
    calls = [
        asyncio.ensure_future(service.reserve(tenant=tenant, request_id=f"r{i}", amounts={rpm: 1}))
        for i in range(1, 60)
    ]
    assert await outcomes(calls) == (59, 0)
    with pytest.raises(QuotaExceeded) as refused:
        await service.reserve(tenant=tenant, request_id="r60", amounts={rpm: 1})
    assert refused.value.reset_at == minute + timedelta(minutes=1)
    assert (refused.value.limit, refused.value.used) == (60, 60)
    retry = refused.value.retry_after()
    assert retry is not None
    assert 1 <= retry <= 60
    assert used_of(await service.status(tenant=tenant), rpm)["used"] == 60


async def test_agent_runs_per_day_count_at_grant(quotas: Quotas, tenant_a: TenantFixture) -> None:
    runs_per_day = Dimension.AGENT_RUNS_PER_DAY
    tenant = limited(tenant_a.context, agent_runs_per_day=2, concurrent_agent_runs=5)
    service = quotas.service
    for i in range(2):
        run = await service.reserve(
            tenant=tenant, request_id=f"run{i}", amounts={runs_per_day: 1, RUNS: 1}
        )
        assert [h.dimension for h in run.holds] == [RUNS]
        await service.settle(run, tenant=tenant)
    with pytest.raises(QuotaExceeded) as refused:
        await service.reserve(tenant=tenant, request_id="run3", amounts={runs_per_day: 1})
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert refused.value.reset_at == tomorrow + timedelta(days=1)


async def test_a_reservation_without_holds_renews(quotas: Quotas, tenant_a: TenantFixture) -> None:
    rpm = Dimension.REQUESTS_PER_MINUTE
    tenant = limited(tenant_a.context, requests_per_minute=1000)
    counted = await quotas.service.reserve(tenant=tenant, request_id="r", amounts={rpm: 1})
    renewed = await quotas.service.renew(counted, tenant=tenant, lease_seconds=600)
    assert renewed.expires_at > counted.expires_at
    assert await quotas.service.status(tenant=limited(tenant_a.context)) == []
