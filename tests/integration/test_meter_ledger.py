"""The group-commit writer: batching, failure isolation between tenants, and the rollups and
quota counters agreeing with the ledger after a mixed workload."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.metering import Meter, Outcome, PriceTable, UsageEvent, statements
from deskpilot.platform import Platform
from deskpilot.quotas import period_bounds
from deskpilot.tenancy.schemas import TenantCreate
from tests.conftest import TenantFixture, unique_slug
from tests.integration.test_meter import chat, sql


@pytest.fixture
async def meter(platform: Platform) -> AsyncIterator[Meter]:
    opened = Meter(platform.resources, PriceTable.load())
    yield opened
    await opened.close()


async def test_concurrent_records_share_transactions(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    tenants = [tenant_a.context, tenant_b.context]
    before = meter.stats.batches
    await asyncio.gather(
        *(meter.record(chat(f"batch-{n}"), tenant=tenants[n % 2]) for n in range(500))
    )
    batches = meter.stats.batches - before
    assert batches < 500 / 5, batches
    assert meter.stats.events == 500
    rows = await sql(
        platform,
        "SELECT count(*) FROM usage_events WHERE tenant_id IN (:a, :b)",
        a=tenant_a.slug,
        b=tenant_b.slug,
    )
    assert rows == [(500,)]


async def test_max_batch_one_is_one_transaction_per_event(
    platform: Platform, tenant_a: TenantFixture
) -> None:
    single = Meter(platform.resources, PriceTable.load(), max_batch=1)
    try:
        await asyncio.gather(
            *(single.record(chat(f"one-{n}"), tenant=tenant_a.context) for n in range(20))
        )
    finally:
        await single.close()
    assert single.stats.batches == 20


async def _deleted_tenant(platform: Platform, operator: OperatorContext) -> TenantContext:
    """A context whose tenant no longer exists: writing for it violates the foreign key."""
    slug = unique_slug("gone")
    admin = platform.admin(operator)
    await admin.create_tenant(TenantCreate(tenant_id=slug, display_name="Gone", tier="pro"))
    context = await admin.context_for(slug)
    await admin.delete_tenant(slug)
    return context


async def test_a_failing_tenant_fails_only_its_own_callers(
    platform: Platform,
    meter: Meter,
    operator: OperatorContext,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    gone = await _deleted_tenant(platform, operator)
    tenants = [tenant_a.context, gone, tenant_b.context]
    before = meter.stats.batches
    results = await asyncio.gather(
        *(meter.record(chat(f"mixed-{n}"), tenant=tenants[n % 3]) for n in range(90)),
        return_exceptions=True,
    )
    assert meter.stats.batches - before == 1  # one batch, committed on the retry
    assert meter.stats.failed_attempts == 1
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    for n, result in enumerate(results):
        by_tenant[tenants[n % 3].tenant_id].append(result)
    assert all(isinstance(r, DBAPIError) for r in by_tenant[gone.tenant_id])
    for good in (tenant_a.slug, tenant_b.slug):
        assert all(not isinstance(r, BaseException) for r in by_tenant[good])
    counts = await sql(
        platform,
        "SELECT tenant_id, count(*) FROM usage_keys WHERE tenant_id IN (:a, :b, :g) "
        "GROUP BY tenant_id ORDER BY tenant_id",
        a=tenant_a.slug,
        b=tenant_b.slug,
        g=gone.tenant_id,
    )
    assert dict(counts) == {tenant_a.slug: 30, tenant_b.slug: 30}
    # the writer is alive: the next batch commits
    later = await meter.record(chat("after-failure"), tenant=tenant_a.context)
    assert not later.duplicate


async def test_a_batch_that_cannot_commit_fails_all_its_callers_and_the_writer_goes_on(
    platform: Platform, meter: Meter, operator: OperatorContext, tenant_a: TenantFixture
) -> None:
    gone = await _deleted_tenant(platform, operator)
    results = await asyncio.gather(
        *(meter.record(chat(f"doomed-{n}"), tenant=gone) for n in range(10)),
        return_exceptions=True,
    )
    assert all(isinstance(r, DBAPIError) for r in results)
    assert meter.stats.failed_events == 10
    recorded = await meter.record(chat("alive"), tenant=tenant_a.context)
    assert recorded.tenant_id == tenant_a.slug
    leftovers = await sql(
        platform,
        "SELECT (SELECT count(*) FROM usage_keys WHERE tenant_id = :g) + "
        "(SELECT count(*) FROM usage_events WHERE tenant_id = :g) + "
        "(SELECT count(*) FROM usage_rollups WHERE tenant_id = :g) + "
        "(SELECT count(*) FROM quota_counters WHERE tenant_id = :g)",
        g=gone.tenant_id,
    )
    assert leftovers == [(0,)]


# ---- the hot path: one call per batch on a kept connection ---------------------------------


async def test_a_batch_of_several_tenants_is_one_call_of_the_ledger_function(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await meter.record(chat("open-the-connection"), tenant=tenant_a.context)
    driver = await meter._writer._connection.driver()  # white box: the writer's connection
    sent: list[str] = []

    def logged(record: Any) -> None:
        sent.append(record.query)

    driver.add_query_logger(logged)
    tenants = [tenant_a.context, tenant_b.context]
    before = meter.stats.batches
    try:
        await asyncio.gather(
            *(meter.record(chat(f"one-call-{n}"), tenant=tenants[n % 2]) for n in range(40))
        )
    finally:
        driver.remove_query_logger(logged)
    batches = meter.stats.batches - before
    assert sent == [statements.RECORD_CALL] * batches  # no BEGIN, binding or COMMIT of its own
    counts = await sql(
        platform,
        "SELECT tenant_id, count(*) FROM usage_events WHERE tenant_id IN (:a, :b) "
        "AND request_id LIKE 'one-call-%' GROUP BY tenant_id ORDER BY tenant_id",
        a=tenant_a.slug,
        b=tenant_b.slug,
    )
    assert dict(counts) == {tenant_a.slug: 20, tenant_b.slug: 20}


async def test_a_lost_connection_is_replaced_and_its_batch_is_written_on_the_retry(
    platform: Platform, meter: Meter, tenant_a: TenantFixture
) -> None:
    await meter.record(chat("before-the-loss"), tenant=tenant_a.context)
    driver = await meter._writer._connection.driver()
    async with platform.resources.db.engine.connect() as killer:
        pid = driver.get_server_pid()
        raw = (await killer.get_raw_connection()).driver_connection
        assert await raw.fetchval("SELECT pg_terminate_backend($1)", pid)
    results = await asyncio.gather(
        *(meter.record(chat(f"lost-{n}"), tenant=tenant_a.context) for n in range(10))
    )
    assert not any(r.duplicate for r in results)
    assert meter.stats.failed_attempts == 1  # the call on the dead connection; then the retry
    after = await meter.record(chat("after-the-loss"), tenant=tenant_a.context)
    assert not after.duplicate
    assert (await meter._writer._connection.driver()).get_server_pid() != pid
    assert meter.stats.failed_attempts == 1
    rows = await sql(
        platform,
        "SELECT count(*) FROM usage_events WHERE tenant_id = :a AND request_id LIKE 'lost-%'",
        a=tenant_a.slug,
    )
    assert rows == [(10,)]


async def test_the_database_function_is_the_codes_statement(platform: Platform) -> None:
    """Migration 0004 holds a frozen copy of the function: a change to the ledger statement
    (``metering.statements``) must come with a migration that replaces it."""
    source = await sql(
        platform,
        "SELECT prosrc FROM pg_proc WHERE proname = :name",
        name=statements.RECORD_FUNCTION,
    )
    assert source == [(statements.record_function_body(),)]


# ---- the rollups and counters agree with the ledger -----------------------------------------

MODELS = [
    ("openai", "gpt-4o", ""),
    ("anthropic", "claude-3-5-haiku-20241022", "fast"),
    ("local", "llama3", "local"),
    ("openai", "no-such-model", ""),
    ("", "", "kb"),
]


def _mixed_event(rng: random.Random, n: int, start: datetime) -> UsageEvent:
    provider, model, alias = MODELS[n % len(MODELS)]
    return UsageEvent(
        component=rng.choice(["gateway", "rag", "agents"]),
        operation=rng.choice(["chat", "embed", "retrieve"]),
        request_id=f"mix-{n}",
        provider=provider,
        provider_model=model,
        model_alias=alias,
        input_tokens=rng.randrange(0, 5000),
        output_tokens=rng.randrange(0, 800),
        cached_tokens=rng.randrange(0, 300),
        documents=rng.randrange(0, 3),
        latency_ms=Decimal(rng.randrange(0, 90_000)) / 1000,
        cache_hit=rng.random() < 0.15,
        outcome=rng.choice([Outcome.OK, Outcome.OK, Outcome.ERROR, Outcome.CANCELLED]),
        # spread over 3 days around a period boundary, at random minutes
        occurred_at=start + timedelta(minutes=rng.randrange(0, 3 * 24 * 60), seconds=n % 60),
    )


async def _tenant(platform: Platform, operator: OperatorContext, anchor: int, tier: str) -> Any:
    slug = unique_slug(f"mix{anchor}")
    admin = platform.admin(operator)
    await admin.create_tenant(
        TenantCreate(tenant_id=slug, display_name="Mix", tier=tier, billing_anchor_day=anchor)
    )
    return await admin.context_for(slug)


ROLLUP_FROM_LEDGER = """
SELECT g.granularity, date_trunc(g.granularity, occurred_at, 'UTC'), component, operation,
  COALESCE(NULLIF(provider_model, ''), model_alias), count(*),
  count(*) FILTER (WHERE outcome = 'error'), count(*) FILTER (WHERE cache_hit),
  sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(documents),
  sum(provider_cost), sum(billed_amount), sum(latency_ms)
FROM usage_events CROSS JOIN (VALUES ('hour'), ('day')) AS g(granularity)
WHERE tenant_id = :t GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
ROLLUP_ROWS = """
SELECT granularity, bucket_start, component, operation, model, events, errors, cache_hits,
  input_tokens, output_tokens, cached_tokens, documents, provider_cost, billed_amount,
  latency_ms_sum
FROM usage_rollups WHERE tenant_id = :t ORDER BY 1, 2, 3, 4, 5
"""


def _counters_from_ledger(rows: list[Any], anchor: int) -> dict[tuple[str, datetime], Decimal]:
    expected: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
    for occurred_at, tokens, billed in rows:
        minute = occurred_at.replace(second=0, microsecond=0)
        period = period_bounds(anchor, occurred_at)[0]
        expected[("tokens_per_minute", minute)] += tokens
        expected[("tokens_per_period", period)] += tokens
        expected[("spend_per_period", period)] += billed
    return {k: v for k, v in expected.items() if v != 0}


async def test_rollups_and_counters_match_the_ledger_after_a_mixed_workload(
    platform: Platform, meter: Meter, operator: OperatorContext
) -> None:
    rng = random.Random(20261124)  # noqa: S311 (a reproducible workload, not a secret)
    tenants = [
        await _tenant(platform, operator, anchor, tier)
        for anchor, tier in ((1, "pro"), (15, "free"), (28, "enterprise"))
    ]
    start = datetime(2026, 2, 27, 22, 0, tzinfo=UTC)  # spans Feb 28 and Mar 1 boundaries
    events = [(_mixed_event(rng, n, start), tenants[n % 3]) for n in range(1500)]
    retries = [events[n] for n in rng.sample(range(1500), 300)]
    await asyncio.gather(*(meter.record(e, tenant=t) for e, t in events + retries))
    for tenant in tenants:
        t = tenant.tenant_id
        assert await sql(platform, ROLLUP_ROWS, t=t) == await sql(platform, ROLLUP_FROM_LEDGER, t=t)
        ledger = await sql(
            platform,
            "SELECT occurred_at, CASE WHEN cache_hit THEN 0 ELSE input_tokens + output_tokens END,"
            " billed_amount FROM usage_events WHERE tenant_id = :t",
            t=t,
        )
        assert len(ledger) == 500
        counters = await sql(
            platform,
            "SELECT dimension, window_start, used FROM quota_counters WHERE tenant_id = :t",
            t=t,
        )
        expected = _counters_from_ledger(ledger, tenant.billing_anchor_day)
        assert {(d, w): u for d, w, u in counters} == expected
        assert {d for d, _, _ in counters} == {
            "tokens_per_minute",
            "tokens_per_period",
            "spend_per_period",
        }
    assert meter.stats.duplicates == 300
