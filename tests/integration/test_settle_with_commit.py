"""A metered work's final record settles its reservation with the ledger commit: the holds go
in the post-commit step that moves the usage mirrors (one Redis script), and ``__aexit__`` has
nothing left to do. On both quota backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import TenantScopeError
from deskpilot.metered import MeteredWork
from deskpilot.metering import Meter, PriceTable, UsageEvent
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension
from tests.conftest import TenantFixture
from tests.integration.test_quotas_support import Quotas, limited, quotas_for, used_of

TPM = Dimension.TOKENS_PER_MINUTE
SETTLED_50 = {"used": Decimal(50), "held": 0, "state": "ok"}  # 50 tokens used, nothing held


@pytest.fixture(params=["postgres", pytest.param("redis", marks=pytest.mark.redis)])
async def quotas(request: pytest.FixtureRequest, platform: Platform, redis_url: str) -> Any:
    async with quotas_for(platform, request.param, redis_url) as opened:
        yield opened


@pytest.fixture
async def meter(quotas: Quotas) -> AsyncIterator[Meter]:
    opened = Meter(quotas.resources, PriceTable.load())
    opened.on_durable(quotas.service.on_durable)
    try:
        yield opened
    finally:
        await opened.close()


def work(meter: Meter, quotas: Quotas, tenant: TenantContext, rid: str) -> MeteredWork:
    return MeteredWork(
        meter, quotas.service, tenant=tenant, request_id=rid, reserve={TPM: 300}, lease_seconds=60
    )


def chat(rid: str, tokens: int = 50) -> UsageEvent:
    return UsageEvent(
        component="gateway",
        operation="chat",
        request_id=rid,
        provider="openai",
        provider_model="gpt-4o-mini",
        input_tokens=tokens,
        occurred_at=datetime.now(UTC),
    )


async def tpm(quotas: Quotas, tenant: TenantContext) -> dict[str, Any]:
    return dict(used_of(await quotas.service.status(tenant=tenant), TPM))


async def settled(meter: Meter, quotas: Quotas, tenant: TenantContext) -> dict[str, Any]:
    """The TPM status once the writer has run the commit's hooks (``Meter.idle``)."""
    await meter.idle()
    return await tpm(quotas, tenant)


async def test_the_final_record_settles_the_holds_with_the_commit(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture
) -> None:
    tenant = limited(tenant_a.context, tokens_per_minute=1000)
    metered = work(meter, quotas, tenant, "final-1")

    async def no_more_calls(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("settled with the commit: __aexit__ must not call the quotas")

    async with metered:
        assert (await tpm(quotas, tenant))["held"] == 300
        await metered.record(chat("final-1"), final=True)
        assert metered.settled
        assert await settled(meter, quotas, tenant) == {
            "used": Decimal(50),
            "held": 0,
            "state": "ok",
        }
        quotas.service.settle = no_more_calls  # type: ignore[method-assign]
        quotas.service.release = no_more_calls  # type: ignore[method-assign]
    assert await tpm(quotas, tenant) == {"used": Decimal(50), "held": 0, "state": "ok"}


async def test_a_record_that_is_not_final_keeps_the_holds_until_the_work_ends(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture
) -> None:
    tenant = limited(tenant_a.context, tokens_per_minute=1000)
    metered = work(meter, quotas, tenant, "steps-1")
    async with metered:
        await metered.record(chat("steps-1"))
        await meter.idle()  # the hook has run: the usage counts, the holds stay
        assert await tpm(quotas, tenant) == {"used": Decimal(350), "held": 300, "state": "ok"}
        assert not metered.settled
    assert await tpm(quotas, tenant) == {"used": Decimal(50), "held": 0, "state": "ok"}


async def test_a_repeated_final_record_still_settles(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture
) -> None:
    """A retried request whose usage is already in the ledger (a duplicate) frees its holds."""
    tenant = limited(tenant_a.context, tokens_per_minute=1000)
    await meter.record(chat("again-1"), tenant=tenant)
    metered = work(meter, quotas, tenant, "again-1")
    async with metered:
        recorded = await metered.record(chat("again-1"), final=True)
        assert recorded.duplicate
        assert await settled(meter, quotas, tenant) == {
            "used": Decimal(50),
            "held": 0,
            "state": "ok",
        }


async def test_only_one_final_record(quotas: Quotas, meter: Meter, tenant_a: TenantFixture) -> None:
    tenant = limited(tenant_a.context, tokens_per_minute=1000)
    metered = work(meter, quotas, tenant, "once-1")
    async with metered:
        await metered.record(chat("once-1"), final=True)
        with pytest.raises(RuntimeError, match="already recorded"):
            await metered.record(chat("once-1"), final=True)


async def test_a_reservation_settles_only_for_its_own_tenant(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    tenant = limited(tenant_a.context, tokens_per_minute=1000)
    reservation = await quotas.service.reserve(
        tenant=tenant, request_id="theirs-1", amounts={TPM: 300}
    )
    with pytest.raises(TenantScopeError):
        await meter.record(chat("theirs-1"), tenant=tenant_b.context, settles=reservation)
    with pytest.raises(TenantScopeError):
        await quotas.service.on_durable(tenant_b.slug, [], [reservation])
    assert (await tpm(quotas, tenant))["held"] == 300


async def test_idle_returns_at_once_with_nothing_pending_and_after_the_writer_stopped(
    quotas: Quotas, tenant_a: TenantFixture
) -> None:
    meter = Meter(quotas.resources, PriceTable.load())
    # (a generous bound turns a hang into a failure; it is no timing assertion)
    await asyncio.wait_for(meter.idle(), 30)  # nothing recorded yet
    await meter.record(chat("idle-1"), tenant=tenant_a.context)
    await asyncio.wait_for(meter.idle(), 30)
    await meter.close()
    await asyncio.wait_for(meter.idle(), 30)


async def test_a_batch_settles_every_reservation_it_finishes(
    quotas: Quotas, meter: Meter, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """Many works of two tenants end together: one writer batch, every hold gone after it."""
    tenants = [limited(t.context, tokens_per_minute=100_000) for t in (tenant_a, tenant_b)]

    async def one(n: int) -> None:
        tenant = tenants[n % 2]
        async with work(meter, quotas, tenant, f"many-{n}") as metered:
            await metered.record(chat(f"many-{n}"), final=True)

    await asyncio.gather(*(one(n) for n in range(40)))
    await meter.idle()
    for tenant in tenants:
        assert await tpm(quotas, tenant) == {"used": Decimal(20 * 50), "held": 0, "state": "ok"}
