"""Usage reports: summaries from the rollups, ledger export pages, storage charges, and the
operator's top spenders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from deskpilot.core.context import OperatorContext, Scope
from deskpilot.core.errors import MissingScope, ValidationFailed
from deskpilot.metering import (
    Meter,
    MeteringAdmin,
    PriceTable,
    StorageMeasurement,
    UsageHandle,
)
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate
from tests.conftest import TenantFixture, new_tenant
from tests.integration.test_meter import chat, sql

DAY = datetime(2026, 6, 10, tzinfo=UTC)
WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
async def meter(platform: Platform) -> AsyncIterator[Meter]:
    opened = Meter(platform.resources, PriceTable.load())
    yield opened
    await opened.close()


def usage(platform: Platform, meter: Meter, tenant: TenantFixture) -> UsageHandle:
    return UsageHandle(platform.resources, meter.prices, tenant.context)


async def test_summary_groups_the_rollups(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    for n, (model, hour) in enumerate([("gpt-4o", 1), ("gpt-4o", 2), ("gpt-4o-mini", 2)]):
        await meter.record(
            chat(
                f"s-{n}",
                provider_model=model,
                input_tokens=10**6,
                occurred_at=DAY.replace(hour=hour),
            ),
            tenant=tenant_a.context,
        )
    handle = usage(platform, meter, tenant_a)
    by_model = await handle.summary(DAY, DAY + timedelta(days=1), group_by=("model",))
    assert [(r.model, r.events, r.provider_cost) for r in by_model.rows] == [
        ("gpt-4o", 2, Decimal("5.000000000000")),
        ("gpt-4o-mini", 1, Decimal("0.150000000000")),
    ]
    assert by_model.totals.events == 3
    assert by_model.totals.billed_amount == Decimal("6.18")
    hourly = await handle.summary(
        DAY, DAY + timedelta(days=1), granularity="hour", group_by=("bucket",)
    )
    assert [(r.bucket_start, r.events) for r in hourly.rows] == [
        (DAY.replace(hour=1), 1),
        (DAY.replace(hour=2), 2),
    ]
    everything = await handle.summary(*WIDE, group_by=())
    assert everything.totals == by_model.totals
    nothing = await handle.summary(DAY + timedelta(days=1), DAY + timedelta(days=2))
    assert nothing.rows == []
    assert nothing.totals.events == 0


async def test_reports_need_the_usage_scope(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    created = await platform.tenant(tenant_a.context).keys.create(
        KeyCreate(name="llm only", scopes=(Scope.LLM,))
    )
    llm_only = await platform.authenticate(created.secret)
    handle = UsageHandle(platform.resources, meter.prices, llm_only)
    with pytest.raises(MissingScope):
        await handle.summary(*WIDE)
    with pytest.raises(MissingScope):
        await handle.events(*WIDE)
    with pytest.raises(MissingScope):
        await handle.storage(date(2026, 1, 1), date(2026, 2, 1))


async def test_bad_report_queries_are_refused(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    handle = usage(platform, meter, tenant_a)
    with pytest.raises(ValidationFailed):
        await handle.summary(WIDE[1], WIDE[0])
    with pytest.raises(ValidationFailed):
        await handle.summary(datetime(2026, 1, 1), datetime(2026, 2, 1))  # naive
    with pytest.raises(ValidationFailed):
        await handle.events(*WIDE, after="not-a-cursor")
    with pytest.raises(ValidationFailed):
        await handle.events(*WIDE, limit=0)


async def test_events_are_exported_page_by_page(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    recorded = await asyncio.gather(
        *(
            meter.record(
                chat(f"page-{n}", occurred_at=DAY + timedelta(seconds=n % 90)),
                tenant=tenant_a.context,
            )
            for n in range(250)
        )
    )
    handle = usage(platform, meter, tenant_a)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await handle.events(DAY, DAY + timedelta(days=1), limit=100, after=after)
        pages += 1
        seen.extend(e.event_id for e in page.events)
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == {r.event_id for r in recorded}
    keys = [(e.occurred_at, e.event_id) for e in (await handle.events(*WIDE, limit=1000)).events]
    assert keys == sorted(keys)


async def test_storage_measurements_are_upserted_and_charged_per_gb_month(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    gib = 1024**3
    june = [date(2026, 6, d) for d in range(1, 31)]
    await meter.record_storage(
        [
            StorageMeasurement(measured_on=d, component="rag", resource="kb-1", bytes=gib)
            for d in june
        ],
        tenant=tenant_a.context,
    )
    # a later measurement of the same day replaces the first; duplicates in one call collapse
    written = await meter.record_storage(
        [
            StorageMeasurement(
                measured_on=june[0], component="rag", resource="kb-1", bytes=2 * gib
            ),
            StorageMeasurement(
                measured_on=june[0], component="rag", resource="kb-1", bytes=4 * gib
            ),
            StorageMeasurement(
                measured_on=june[0], component="cache", resource="responses", bytes=gib
            ),
        ],
        tenant=tenant_a.context,
    )
    assert written == 2
    report = await usage(platform, meter, tenant_a).storage(date(2026, 6, 1), date(2026, 7, 1))
    lines = {(line.component, line.resource): line for line in report.lines}
    # kb-1: 29 days at 1 GiB + 1 day at 4 GiB over a 30-day period = 33/30 GB-months
    kb = lines[("rag", "kb-1")]
    assert kb.days_measured == 30
    assert kb.gb_months == Decimal("1.100000000000")
    assert kb.cost == Decimal("0.110000000000")  # at the bundled 0.10 per GB-month
    assert kb.billed_amount == Decimal("0.132000000000")  # pro tier: 20 % markup
    cache = lines[("cache", "responses")]
    assert cache.days_measured == 1
    assert cache.gb_months == Decimal("0.033333333333")
    assert report.cost == kb.cost + cache.cost
    rows = await sql(
        platform, "SELECT count(*) FROM storage_measurements WHERE tenant_id = :t", t=tenant_a.slug
    )
    assert rows == [(31,)]


async def test_operators_see_top_spenders_across_tenants(
    platform: Platform, meter: Meter, operator: OperatorContext
) -> None:
    when = datetime(2031, 1, 5, 12, tzinfo=UTC)  # a day no other test writes to
    big = await new_tenant(platform, operator, "big")
    small = await new_tenant(platform, operator, "small")
    await meter.record(chat("x", input_tokens=10**7, occurred_at=when), tenant=big.context)
    await meter.record(chat("y", input_tokens=10**5, occurred_at=when), tenant=small.context)
    admin = MeteringAdmin(platform.resources, operator)
    day = when.replace(hour=0)
    top = await admin.usage_by_tenant(day, day + timedelta(days=1), limit=10)
    assert [t.tenant_id for t in top[:2]] == [big.slug, small.slug]
    assert top[0].billed_amount == Decimal("30")
    hourly = await admin.usage_by_tenant(when, when + timedelta(hours=1), limit=1)
    assert [t.tenant_id for t in hourly] == [big.slug]
