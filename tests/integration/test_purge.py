"""Tenant deletion purges every row and derived entry the tenant owns."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from deskpilot.core.context import OperatorContext, Scope
from deskpilot.core.errors import NotFound, Unauthenticated
from deskpilot.core.redis import tenant_key
from deskpilot.metering import StorageMeasurement, UsageEvent
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension
from deskpilot.tenancy.schemas import KeyCreate, TenantCreate
from tests.conftest import TenantFixture, make_settings, new_tenant


async def rows_holding(platform: Platform, tenant_id: str) -> dict[str, int]:
    """Rows in any table (tenant-owned or not) with a text column equal to the tenant id."""
    found: dict[str, int] = {}
    async with platform.resources.db.dangerously_unscoped_session() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN ('character varying', 'text')"
                )
            )
        ).all()
        for table, column in columns:
            count = (
                await session.execute(
                    text(f'SELECT count(*) FROM "{table}" WHERE "{column}" = :t'),  # noqa: S608
                    {"t": tenant_id},
                )
            ).scalar_one()
            if count:
                found[f"{table}.{column}"] = count
    return found


async def _populate(platform: Platform, tenant: TenantFixture) -> None:
    """Something in every kind of table: keys, config, audit, ledger and rollups, quota
    counters and an open reservation, storage measurements."""
    handle = platform.tenant(tenant.context)
    await handle.keys.create(KeyCreate(name="second", scopes=(Scope.LLM,)))
    await handle.config.patch({"general": {"timezone": "Europe/Paris"}})
    request_id = uuid.uuid4().hex
    await platform.quotas.reserve(
        tenant=tenant.context,
        request_id=request_id,
        amounts={Dimension.REQUESTS_PER_MINUTE: 1, Dimension.CONCURRENT_AGENT_RUNS: 1},
    )
    await platform.meter.record(
        UsageEvent(
            component="gateway",
            operation="chat",
            request_id=request_id,
            provider="openai",
            provider_model="gpt-4o",
            input_tokens=10,
            output_tokens=5,
        ),
        tenant=tenant.context,
    )
    await platform.meter.record_storage(
        [
            StorageMeasurement(
                measured_on=date.today(), component="rag", resource="chunks", bytes=1024, items=3
            )
        ],
        tenant=tenant.context,
    )


async def test_delete_purges_every_table(
    platform: Platform, operator: OperatorContext, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await _populate(platform, tenant_a)
    await _populate(platform, tenant_b)
    before_b = await rows_holding(platform, tenant_b.slug)
    assert await rows_holding(platform, tenant_a.slug)

    report = await platform.admin(operator).delete_tenant(tenant_a.slug)

    # Billing records go with the tenant (docs/concepts/metering-and-quotas.md): export first.
    for table in (
        "usage_events",
        "usage_keys",
        "usage_rollups",
        "quota_counters",
        "quota_reservations",
        "storage_measurements",
    ):
        assert report.rows_deleted[table] >= 1, table
    assert report.rows_deleted["api_keys"] == 2
    assert report.rows_deleted["tenants"] == 1
    assert await rows_holding(platform, tenant_a.slug) == {}
    assert await rows_holding(platform, tenant_b.slug) == before_b
    with pytest.raises(Unauthenticated):
        await platform.authenticate(tenant_a.key)
    with pytest.raises(NotFound):
        await platform.admin(operator).get_tenant(tenant_a.slug)


async def test_deleted_slug_can_be_reused_without_old_data(
    platform: Platform, operator: OperatorContext, tenant_a: TenantFixture
) -> None:
    await _populate(platform, tenant_a)
    admin = platform.admin(operator)
    await admin.delete_tenant(tenant_a.slug)
    await admin.create_tenant(TenantCreate(tenant_id=tenant_a.slug, display_name="Reborn"))
    handle = await admin.on_tenant(tenant_a.slug)
    assert await handle.keys.list(include_revoked=True) == []
    assert (await handle.config.view()).overrides == {}
    with pytest.raises(Unauthenticated):
        await platform.authenticate(tenant_a.key)


async def test_unknown_tenant_delete_is_not_found(
    platform: Platform, operator: OperatorContext
) -> None:
    with pytest.raises(NotFound):
        await platform.admin(operator).delete_tenant("no-such-tenant")


@pytest.mark.redis
async def test_delete_purges_the_tenants_redis_keys(
    redis_url: str, home: object, operator: OperatorContext, platform: Platform
) -> None:
    settings = make_settings(home, REDIS_URL=redis_url)  # type: ignore[arg-type]
    async with await Platform.open(settings) as with_redis:
        a = await new_tenant(with_redis, operator, "alpha")
        b = await new_tenant(with_redis, operator, "bravo")
        redis: Redis = with_redis.resources.redis  # type: ignore[assignment]
        for t in (a, b):
            await redis.set(tenant_key("probe", "one", tenant=t.context), b"1")
            await redis.set(tenant_key("probe", "two", tenant=t.context), b"2")
        await with_redis.admin(operator).delete_tenant(a.slug)
        left_a = [k async for k in redis.scan_iter(match=f"dp:{{{a.slug}}}:*")]
        left_b = [k async for k in redis.scan_iter(match=f"dp:{{{b.slug}}}:*")]
        assert left_a == []
        assert len(left_b) == 2
        await redis.unlink(*left_b)
