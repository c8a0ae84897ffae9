"""The Meter against real PostgreSQL: exact money, idempotency, what a record returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from deskpilot.core.context import OperatorContext
from deskpilot.core.errors import TenantScopeError
from deskpilot.metering import CounterDelta, Meter, MeterClosed, PriceTable, UsageEvent
from deskpilot.platform import Platform
from tests.conftest import TenantFixture, new_tenant


@pytest.fixture
async def meter(platform: Platform) -> AsyncIterator[Meter]:
    opened = Meter(platform.resources, PriceTable.load())
    yield opened
    await opened.close()


async def sql(platform: Platform, query: str, **params: Any) -> list[Any]:
    """Read as the operator (every tenant), to check what was really stored."""
    async with platform.resources.db.dangerously_unscoped_session() as session:
        return list((await session.execute(text(query), params)).all())


def chat(request_id: str, **fields: Any) -> UsageEvent:
    base: dict[str, Any] = {
        "component": "gateway",
        "operation": "chat",
        "request_id": request_id,
        "provider": "openai",
        "provider_model": "gpt-4o",
    }
    return UsageEvent.model_validate(base | fields)


async def test_costs_are_exact_decimals_in_the_ledger(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    # the fixture tenant is on the "pro" tier: 20 % markup
    recorded = await meter.record(chat("exact", input_tokens=1_234_567), tenant=tenant_a.context)
    assert recorded.provider_cost == Decimal("3.0864175")
    assert recorded.billed_amount == Decimal("3.703701")
    stored = await sql(
        platform,
        "SELECT provider_cost, billed_amount FROM usage_events WHERE tenant_id = :t",
        t=tenant_a.slug,
    )
    assert stored == [(Decimal("3.086417500000"), Decimal("3.703701000000"))]


async def test_a_thousand_events_sum_exactly_to_their_rollup(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    models = ["gpt-4o", "gpt-4.1-nano", "gpt-4o-mini"]
    events = [
        chat(
            f"sum-{n}",
            provider_model=models[n % 3],
            input_tokens=n * 37 % 5003,
            cached_tokens=n % 7,
            output_tokens=n * 11 % 997,
        )
        for n in range(1000)
    ]
    recorded = await asyncio.gather(*(meter.record(e, tenant=tenant_a.context) for e in events))
    expected_cost = sum((r.provider_cost for r in recorded), Decimal(0))
    expected_billed = sum((r.billed_amount for r in recorded), Decimal(0))
    for granularity in ("hour", "day"):
        rollup = await sql(
            platform,
            "SELECT sum(events), sum(provider_cost), sum(billed_amount) FROM usage_rollups "
            "WHERE tenant_id = :t AND granularity = :g",
            t=tenant_a.slug,
            g=granularity,
        )
        assert rollup == [(1000, expected_cost, expected_billed)]
    ledger = await sql(
        platform,
        "SELECT sum(provider_cost), sum(billed_amount) FROM usage_events WHERE tenant_id = :t",
        t=tenant_a.slug,
    )
    assert ledger == [(expected_cost, expected_billed)]


async def _counts(platform: Platform, tenant_id: str) -> tuple[int, int, int, Decimal]:
    rows = await sql(
        platform,
        "SELECT (SELECT count(*) FROM usage_events WHERE tenant_id = :t), "
        "(SELECT count(*) FROM usage_keys WHERE tenant_id = :t), "
        "(SELECT sum(events) FROM usage_rollups WHERE tenant_id = :t AND granularity = 'day'), "
        "(SELECT sum(used) FROM quota_counters WHERE tenant_id = :t "
        " AND dimension = 'tokens_per_period')",
        t=tenant_id,
    )
    return rows[0]  # type: ignore[no-any-return]


async def test_a_sequential_retry_returns_the_original(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    first = await meter.record(chat("retry-1", input_tokens=100), tenant=tenant_a.context)
    again = await meter.record(chat("retry-1", input_tokens=999), tenant=tenant_a.context)
    assert not first.duplicate
    assert again.duplicate
    assert again.event_id == first.event_id
    assert again.occurred_at == first.occurred_at
    assert again.provider_cost == first.provider_cost  # the original's, not the retry's
    assert await _counts(platform, tenant_a.slug) == (1, 1, 1, Decimal(100))


@pytest.mark.parametrize("meters", [1, 2], ids=["one writer", "two writers"])
async def test_fifty_concurrent_retries_make_one_event(
    platform: Platform, tenant_a: TenantFixture, meters: int
) -> None:
    """Two Meters stand for two processes: their transactions race on the same key."""
    writers = [Meter(platform.resources, PriceTable.load()) for _ in range(meters)]
    try:
        results = await asyncio.gather(
            *(
                writers[n % meters].record(chat("same", input_tokens=10), tenant=tenant_a.context)
                for n in range(50)
            )
        )
    finally:
        for writer in writers:
            await writer.close()
    assert len({r.event_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert await _counts(platform, tenant_a.slug) == (1, 1, 1, Decimal(10))


async def test_the_same_request_id_for_another_operation_is_another_event(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    chat_event = await meter.record(chat("req"), tenant=tenant_a.context)
    embed = await meter.record(chat("req", operation="embed"), tenant=tenant_a.context)
    assert chat_event.event_id != embed.event_id
    assert not embed.duplicate


async def test_another_tenants_request_id_makes_an_event_of_ones_own(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    mine = await meter.record(chat("shared-id", input_tokens=5), tenant=tenant_a.context)
    theirs = await meter.record(chat("shared-id", input_tokens=7), tenant=tenant_b.context)
    assert not theirs.duplicate
    assert theirs.event_id != mine.event_id
    assert theirs.tenant_id == tenant_b.slug
    assert await _counts(platform, tenant_a.slug) == (1, 1, 1, Decimal(5))
    assert await _counts(platform, tenant_b.slug) == (1, 1, 1, Decimal(7))


async def test_unknown_models_are_recorded_at_zero_and_warned_once(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="deskpilot.metering.service"):
        for n in range(3):
            recorded = await meter.record(
                chat(f"unknown-{n}", provider_model="gpt-9-ultra", input_tokens=10**6),
                tenant=tenant_a.context,
            )
            assert recorded.unpriced
            assert recorded.provider_cost == recorded.billed_amount == 0
    warnings = [r for r in caplog.records if "no price for model" in r.getMessage()]
    assert len(warnings) == 1
    assert (await _counts(platform, tenant_a.slug))[0] == 3


async def test_a_cache_hit_bills_nothing_and_counts_no_tokens(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    hit = await meter.record(
        chat("hit", component="cache", input_tokens=500, cache_hit=True), tenant=tenant_a.context
    )
    assert hit.provider_cost == hit.billed_amount == 0
    rollup = await sql(
        platform,
        "SELECT events, cache_hits, input_tokens FROM usage_rollups "
        "WHERE tenant_id = :t AND granularity = 'day'",
        t=tenant_a.slug,
    )
    assert rollup == [(1, 1, 500)]
    counters = await sql(
        platform, "SELECT * FROM quota_counters WHERE tenant_id = :t", t=tenant_a.slug
    )
    assert counters == []


async def test_counters_follow_the_tenants_billing_anchor(
    platform: Platform, meter: Meter, operator: OperatorContext
) -> None:
    from deskpilot.tenancy.schemas import TenantCreate

    slug = f"anchor-{datetime.now(UTC).strftime('%H%M%S%f')}"
    admin = platform.admin(operator)
    await admin.create_tenant(
        TenantCreate(tenant_id=slug, display_name="Anchor", tier="free", billing_anchor_day=15)
    )
    context = await admin.context_for(slug)
    boundary = datetime(2026, 3, 15, tzinfo=UTC)
    before = boundary - timedelta(microseconds=1)
    await meter.record(chat("before", input_tokens=1, occurred_at=before), tenant=context)
    await meter.record(chat("at", input_tokens=2, occurred_at=boundary), tenant=context)
    rows = await sql(
        platform,
        "SELECT window_start, window_end, used FROM quota_counters "
        "WHERE tenant_id = :t AND dimension = 'tokens_per_period' ORDER BY window_start",
        t=slug,
    )
    assert rows == [
        (datetime(2026, 2, 15, tzinfo=UTC), boundary, Decimal(1)),
        (boundary, datetime(2026, 4, 15, tzinfo=UTC), Decimal(2)),
    ]


async def test_on_durable_hooks_see_what_the_commit_added(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    seen: list[tuple[str, list[CounterDelta]]] = []

    async def mirror(tenant_id: str, deltas: Any, settled: Any) -> None:
        seen.append((tenant_id, list(deltas)))

    async def broken(tenant_id: str, deltas: Any, settled: Any) -> None:
        raise RuntimeError("redis is down")

    meter.on_durable(broken)  # logged, never raised: the usage is already durable
    meter.on_durable(mirror)
    at = datetime(2026, 5, 5, 10, 30, 15, tzinfo=UTC)
    recorded = await meter.record(
        chat("hooked", input_tokens=40, output_tokens=2, occurred_at=at), tenant=tenant_a.context
    )
    await meter.record(chat("hooked", input_tokens=40), tenant=tenant_a.context)  # duplicate
    assert [t for t, _ in seen] == [tenant_a.slug]
    deltas = {(d.dimension, d.window_start, d.window_end): d.amount for d in seen[0][1]}
    minute = datetime(2026, 5, 5, 10, 30, tzinfo=UTC)
    period = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    assert deltas == {
        ("tokens_per_minute", minute, minute + timedelta(minutes=1)): 42,
        ("tokens_per_period", *period): 42,
        ("spend_per_period", *period): recorded.billed_amount,
    }


async def test_close_flushes_queued_records_and_refuses_later_ones(
    platform: Platform, tenant_a: TenantFixture
) -> None:
    meter = Meter(platform.resources, PriceTable.load())
    pending = [
        asyncio.ensure_future(meter.record(chat(f"flush-{n}"), tenant=tenant_a.context))
        for n in range(100)
    ]
    await asyncio.sleep(0)  # every record is queued
    await meter.close()
    assert all(p.done() and not p.exception() for p in pending)
    assert (await _counts(platform, tenant_a.slug))[0] == 100
    with pytest.raises(MeterClosed):
        await meter.record(chat("late"), tenant=tenant_a.context)
    await meter.close()  # idempotent


async def test_a_cancelled_caller_still_gets_its_usage_recorded(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    """A client that disconnects does not un-spend what it consumed."""
    task = asyncio.ensure_future(meter.record(chat("dropped"), tenant=tenant_a.context))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await meter.record(chat("after"), tenant=tenant_a.context)  # the next batch
    assert (await _counts(platform, tenant_a.slug))[0] == 2


async def test_records_for_a_tenant_on_another_tier_use_its_markup(
    platform: Platform, meter: Meter, operator: OperatorContext
) -> None:
    free = await new_tenant(platform, operator, "free", tier="free")
    recorded = await meter.record(chat("free", input_tokens=10**6), tenant=free.context)
    assert recorded.provider_cost == recorded.billed_amount == Decimal("2.5")


async def test_recording_without_a_tenant_context_is_refused(meter: Meter) -> None:
    with pytest.raises(TenantScopeError):
        await meter.record(chat("nobody"), tenant=OperatorContext("op"))  # type: ignore[arg-type]
