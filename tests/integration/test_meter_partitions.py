"""Monthly partitions of the usage ledger: created ahead, idempotent, rows routed by month, and
rows that reached the default partition moved when their month's partition is created."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from deskpilot.metering import (
    Meter,
    PriceTable,
    UsageHandle,
    ensure_partitions,
    partition_name,
)
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.integration.test_meter import chat, sql


@pytest.fixture
async def meter(platform: Platform) -> AsyncIterator[Meter]:
    opened = Meter(platform.resources, PriceTable.load())
    yield opened
    await opened.close()


@pytest.fixture
async def far_year(platform: Platform) -> AsyncIterator[int]:
    """A year no other test (or earlier run on an external database) uses; its partitions are
    dropped afterwards."""
    year = 2200 + secrets.randbelow(700)
    yield year
    async with platform.resources.db.engine.begin() as conn:
        for partition in [partition_name(year - 1, 12)] + [
            partition_name(year, month) for month in range(1, 13)
        ]:
            await conn.execute(text(f"DROP TABLE IF EXISTS {partition}"))


async def _where(platform: Platform, tenant_id: str) -> dict[str, int]:
    rows = await sql(
        platform,
        "SELECT tableoid::regclass::text, count(*) FROM usage_events WHERE tenant_id = :t "
        "GROUP BY 1",
        t=tenant_id,
    )
    return dict(rows)


async def test_ensure_partitions_creates_months_once(platform: Platform, far_year: int) -> None:
    db = platform.resources.db
    around = datetime(far_year, 1, 20, tzinfo=UTC)
    created = await ensure_partitions(db, around, months_before=1, months_after=2)
    assert created == [
        partition_name(far_year - 1, 12),
        partition_name(far_year, 1),
        partition_name(far_year, 2),
        partition_name(far_year, 3),
    ]
    assert await ensure_partitions(db, around, months_before=1, months_after=2) == []
    granted = await sql(
        platform,
        "SELECT has_table_privilege('deskpilot_app', :p, 'SELECT, INSERT')",
        p=partition_name(far_year, 1),
    )
    assert granted == [(False,)]  # rows are reached through the parent only (RLS)


async def test_events_land_in_their_months_partition(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, far_year: int
) -> None:
    await ensure_partitions(
        platform.resources.db, datetime(far_year, 5, 1, tzinfo=UTC), months_before=0, months_after=1
    )
    may = datetime(far_year, 5, 31, 23, 59, 59, 999999, tzinfo=UTC)
    june = datetime(far_year, 6, 1, tzinfo=UTC)
    await meter.record(chat("may", occurred_at=may), tenant=tenant_a.context)
    await meter.record(chat("june", occurred_at=june), tenant=tenant_a.context)
    await meter.record(
        chat("outside", occurred_at=datetime(1999, 1, 1, tzinfo=UTC)), tenant=tenant_a.context
    )
    assert await _where(platform, tenant_a.slug) == {
        partition_name(far_year, 5): 1,
        partition_name(far_year, 6): 1,
        "usage_events_default": 1,
    }
    handle = UsageHandle(platform.resources, meter.prices, tenant_a.context)
    page = await handle.events(datetime(1990, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC))
    assert [e.request_id for e in page.events] == ["outside", "may", "june"]


async def test_rows_in_the_default_partition_move_to_their_new_month(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, far_year: int
) -> None:
    month = datetime(far_year, 9, 1, tzinfo=UTC)
    for n in range(5):
        await meter.record(
            chat(f"early-{n}", occurred_at=month + timedelta(days=n * 6)), tenant=tenant_a.context
        )
    await meter.record(
        chat("next-month", occurred_at=datetime(far_year, 10, 2, tzinfo=UTC)),
        tenant=tenant_a.context,
    )
    assert await _where(platform, tenant_a.slug) == {"usage_events_default": 6}

    created = await ensure_partitions(platform.resources.db, month, months_before=0, months_after=0)

    assert created == [partition_name(far_year, 9)]
    assert await _where(platform, tenant_a.slug) == {
        partition_name(far_year, 9): 5,
        "usage_events_default": 1,
    }
    attached = await sql(
        platform,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'usage_events'::regclass "
        "AND inhrelid = 'usage_events_default'::regclass",
    )
    assert attached == [(1,)]
    # still readable, still idempotent, and new rows still route
    handle = UsageHandle(platform.resources, meter.prices, tenant_a.context)
    page = await handle.events(month, month + timedelta(days=60))
    assert len(page.events) == 6
    again = await meter.record(chat("early-0", occurred_at=month), tenant=tenant_a.context)
    assert again.duplicate
    await meter.record(
        chat("late", occurred_at=month + timedelta(days=20)), tenant=tenant_a.context
    )
    assert (await _where(platform, tenant_a.slug))[partition_name(far_year, 9)] == 6
