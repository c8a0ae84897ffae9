"""Quota semantics, each test run against the PostgreSQL and the Redis backend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from deskpilot.core.errors import TenantScopeError
from deskpilot.platform import Platform
from deskpilot.quotas import (
    Dimension,
    QuotaExceeded,
    QuotaState,
    ReservationLost,
    period_bounds,
)
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


@pytest.mark.parametrize(
    ("dimension", "limit", "amount"), [(TPP, 5000, 100), (RUNS, 50, 1)], ids=["tokens", "runs"]
)
async def test_200_concurrent_reservations_grant_exactly_what_fits(
    quotas: Quotas, tenant_a: TenantFixture, dimension: Dimension, limit: int, amount: int
) -> None:
    tenant = limited(tenant_a.context, **{dimension.value: limit})
    calls = [
        asyncio.ensure_future(
            quotas.service.reserve(tenant=tenant, request_id=f"r{i}", amounts={dimension: amount})
        )
        for i in range(200)
    ]
    assert await outcomes(calls) == (50, 150)
    [status] = await quotas.service.status(tenant=tenant)
    assert status.used == limit
    assert status.state is QuotaState.EXCEEDED


async def test_refusal_names_the_first_dimension_and_holds_nothing(
    quotas: Quotas, tenant_a: TenantFixture
) -> None:
    tenant = limited(tenant_a.context, tokens_per_period=1000, spend_per_period="1")
    service = quotas.service
    with pytest.raises(QuotaExceeded) as refused:
        await service.reserve(
            tenant=tenant, request_id="r", amounts={TPP: 500, Dimension.SPEND_PER_PERIOD: 2}
        )
    _, period_end = period_bounds(tenant.billing_anchor_day, datetime.now(UTC))
    error = refused.value
    assert error.dimension is Dimension.SPEND_PER_PERIOD
    assert (error.limit, error.used, error.requested) == (1, 0, 2)
    assert error.reset_at == period_end
    assert used_of(await service.status(tenant=tenant), TPP)["used"] == 0  # all or nothing
    with pytest.raises(QuotaExceeded) as both:
        await service.reserve(
            tenant=tenant, request_id="r", amounts={Dimension.SPEND_PER_PERIOD: 2, TPP: 5000}
        )
    assert both.value.dimension is TPP  # Dimension order, whatever the mapping's order


async def test_unlimited_dimensions_are_not_held(quotas: Quotas, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, tokens_per_period=10)
    reservation = await quotas.service.reserve(
        tenant=tenant, request_id="r", amounts={TPP: 4, Dimension.SPEND_PER_PERIOD: 99}
    )
    assert [h.dimension for h in reservation.holds] == [TPP]
    assert [s.dimension for s in await quotas.service.status(tenant=tenant)] == [TPP]


async def test_expired_lease_frees_capacity(quotas: Quotas, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, concurrent_agent_runs=2)
    service = quotas.service
    held = await service.reserve(
        tenant=tenant, request_id="r", amounts={RUNS: 2}, lease_seconds=0.5
    )
    with pytest.raises(QuotaExceeded):
        await service.reserve(tenant=tenant, request_id="r2", amounts={RUNS: 1})
    await asyncio.sleep(max((held.expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    again = await service.reserve(tenant=tenant, request_id="r3", amounts={RUNS: 2})
    await service.release(held, tenant=tenant)  # after expiry: a no-op ...
    with pytest.raises(QuotaExceeded):  # ... that frees nothing of the new reservation
        await service.reserve(tenant=tenant, request_id="r4", amounts={RUNS: 1})
    await service.settle(again, tenant=tenant)
    assert await service.purge_expired(tenant=tenant) >= 0


async def test_settle_and_release_are_idempotent(quotas: Quotas, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, tokens_per_period=100)
    service = quotas.service
    first = await service.reserve(tenant=tenant, request_id="a", amounts={TPP: 50})
    await service.reserve(tenant=tenant, request_id="b", amounts={TPP: 50})
    await service.settle(first, tenant=tenant)
    await service.settle(first, tenant=tenant)
    await service.release(first, tenant=tenant)
    await service.reserve(tenant=tenant, request_id="c", amounts={TPP: 50})
    with pytest.raises(QuotaExceeded):  # freed once, not three times
        await service.reserve(tenant=tenant, request_id="d", amounts={TPP: 1})


async def test_renew_extends_the_lease(quotas: Quotas, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, concurrent_agent_runs=1)
    service = quotas.service
    short = await service.reserve(
        tenant=tenant, request_id="r", amounts={RUNS: 1}, lease_seconds=1.5
    )
    renewed = await service.renew(short, tenant=tenant, lease_seconds=60)
    assert renewed.expires_at > short.expires_at
    assert renewed.reservation_id == short.reservation_id
    await asyncio.sleep(max((short.expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    with pytest.raises(QuotaExceeded):  # still held past the original lease
        await service.reserve(tenant=tenant, request_id="r2", amounts={RUNS: 1})
    await service.release(renewed, tenant=tenant)
    with pytest.raises(ReservationLost):
        await service.renew(renewed, tenant=tenant, lease_seconds=60)
    await service.settle(renewed, tenant=tenant)


async def test_renew_after_expiry_is_refused(quotas: Quotas, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, concurrent_agent_runs=1)
    service = quotas.service
    short = await service.reserve(
        tenant=tenant, request_id="r", amounts={RUNS: 1}, lease_seconds=0.3
    )
    await asyncio.sleep(max((short.expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.1)
    with pytest.raises(ReservationLost):
        await service.renew(short, tenant=tenant, lease_seconds=60)


async def test_soft_threshold_warns_and_logs_once(
    quotas: Quotas, tenant_a: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = limited(tenant_a.context, tokens_per_period=1000, soft_threshold="0.8")
    service = quotas.service
    caplog.set_level(logging.WARNING, logger="deskpilot.quotas.service")
    quiet = await service.reserve(tenant=tenant, request_id="a", amounts={TPP: 700})
    assert quiet.warnings == ()
    warned = await service.reserve(tenant=tenant, request_id="b", amounts={TPP: 100})
    [warning] = warned.warnings
    assert (warning.dimension, warning.limit, warning.used) == (TPP, 1000, 800)
    assert warning.reset_at == period_bounds(1, datetime.now(UTC))[1]
    again = await service.reserve(tenant=tenant, request_id="c", amounts={TPP: 100})
    assert again.warnings[0].used == 900
    logged = [r for r in caplog.records if r.getMessage() == "quota soft threshold reached"]
    assert len(logged) == 1
    assert logged[0].__dict__["tenant_id"] == tenant.tenant_id
    assert used_of(await service.status(tenant=tenant), TPP)["state"] is QuotaState.WARNING


async def test_another_tenants_reservation_is_neither_freed_nor_accepted(
    quotas: Quotas, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    a = limited(tenant_a.context, concurrent_agent_runs=1)
    b = limited(tenant_b.context, concurrent_agent_runs=1)
    service = quotas.service
    held = await service.reserve(tenant=a, request_id="a", amounts={RUNS: 1})
    as_b = replace(held, tenant_id=b.tenant_id)  # A's reservation id, presented by B
    await service.release(as_b, tenant=b)
    await service.settle(as_b, tenant=b)
    with pytest.raises(ReservationLost):
        await service.renew(as_b, tenant=b, lease_seconds=600)
    with pytest.raises(TenantScopeError):
        await service.release(held, tenant=b)
    with pytest.raises(QuotaExceeded):  # A's slot is still held
        await service.reserve(tenant=a, request_id="a2", amounts={RUNS: 1})
    assert used_of(await service.status(tenant=b), RUNS)["used"] == 0
    await service.reserve(tenant=b, request_id="b", amounts={RUNS: 1})


async def test_invalid_requests_are_refused(quotas: Quotas, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, tokens_per_period=10)
    service = quotas.service
    for amounts in ({TPP: -1}, {TPP: Decimal("1.5")}, {TPP: Decimal("NaN")}):
        with pytest.raises(ValueError, match="amount"):
            await service.reserve(tenant=tenant, request_id="r", amounts=amounts)
    with pytest.raises(ValueError, match="request_id"):
        await service.reserve(tenant=tenant, request_id="", amounts={TPP: 1})
    with pytest.raises(ValueError, match="lease"):
        await service.reserve(tenant=tenant, request_id="r", amounts={TPP: 1}, lease_seconds=0)
    nothing = await service.reserve(tenant=tenant, request_id="r", amounts={})
    assert nothing.holds == ()
    await service.settle(nothing, tenant=tenant)


async def test_maintenance_purges_expired_rows_of_every_tenant(
    platform: Platform, redis_url: str, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    async with quotas_for(platform, "postgres", redis_url) as quotas:
        service = quotas.service
        for fixture in (tenant_a, tenant_b):
            tenant = limited(fixture.context, concurrent_agent_runs=5, requests_per_minute=5)
            await service.reserve(tenant=tenant, request_id="r", amounts={RUNS: 1})
            await service.reserve(
                tenant=tenant, request_id="r", amounts={Dimension.REQUESTS_PER_MINUTE: 1}
            )
            # last for its tenant: a later reserve of the tenant would drop it once expired
            await service.reserve(
                tenant=tenant, request_id="r", amounts={RUNS: 1}, lease_seconds=0.01
            )
        await asyncio.sleep(0.05)
        assert await service.unscoped_purge_expired(keep=timedelta(days=2)) >= 2
        assert await service.unscoped_purge_expired(keep=-timedelta(minutes=5)) >= 2
        async with platform.resources.db.dangerously_unscoped_session() as session:
            rows = await session.execute(
                text(
                    "SELECT tenant_id, count(*) FROM quota_reservations "
                    "WHERE tenant_id IN (:a, :b) GROUP BY 1"
                ),
                {"a": tenant_a.slug, "b": tenant_b.slug},
            )
            assert dict(rows.all()) == {tenant_a.slug: 1, tenant_b.slug: 1}  # the live ones
            minute_rows = await session.execute(
                text(
                    "SELECT count(*) FROM quota_counters WHERE tenant_id IN (:a, :b) "
                    "AND dimension = 'requests_per_minute'"
                ),
                {"a": tenant_a.slug, "b": tenant_b.slug},
            )
            assert minute_rows.scalar_one() == 0  # keep < 0: even this minute's counters go
