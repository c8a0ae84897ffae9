"""Queries of the metering component. Tenant-owned tables go through ``TenantRepository``;
the cross-tenant report is ``unscoped_usage_by_tenant`` at the bottom (operator role only).

Writes to the ledger, its keys and the rollups are not here: the group-commit writer does them
in one statement per tenant group (``statements.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.repository import TenantRepository
from deskpilot.metering.models import StorageMeasurementRow, UsageEventRow, UsageRollupRow
from deskpilot.metering.schemas import StorageMeasurement

R = UsageRollupRow
GROUP_COLUMNS: dict[str, Any] = {
    "bucket": R.bucket_start,
    "component": R.component,
    "operation": R.operation,
    "model": R.model,
}
SUMMED = (
    "events",
    "errors",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "provider_cost",
    "billed_amount",
)


def _sums() -> list[ColumnElement[Any]]:
    return [func.coalesce(func.sum(getattr(R, c)), 0).label(c) for c in SUMMED]


def _in_range(granularity: str, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    return [R.granularity == granularity, R.bucket_start >= start, R.bucket_start < end]


class UsageEventRepo(TenantRepository[UsageEventRow]):
    model = UsageEventRow

    async def page(
        self,
        *,
        tenant: TenantContext,
        start: datetime,
        end: datetime,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> Sequence[UsageEventRow]:
        """Ledger rows in ``[start, end)`` in (occurred_at, event_id) order, after a cursor."""
        stmt = (
            self.select(tenant=tenant)
            .where(UsageEventRow.occurred_at >= start, UsageEventRow.occurred_at < end)
            .order_by(UsageEventRow.occurred_at, UsageEventRow.event_id)
            .limit(limit)
        )
        if after is not None:
            key = tuple_(UsageEventRow.occurred_at, UsageEventRow.event_id)
            stmt = stmt.where(key > tuple_(literal(after[0]), literal(after[1])))
        return await self.list(stmt)


class UsageRollupRepo(TenantRepository[UsageRollupRow]):
    model = UsageRollupRow

    async def summary(
        self,
        *,
        tenant: TenantContext,
        granularity: str,
        start: datetime,
        end: datetime,
        group_by: Sequence[str],
    ) -> Sequence[Row[Any]]:
        """Sums of the rollup buckets that start in ``[start, end)``, per group."""
        tenant_id = self._check(tenant)
        keys = [GROUP_COLUMNS[g].label(g) for g in group_by]
        stmt = select(*keys, *_sums()).where(
            R.tenant_id == tenant_id, *_in_range(granularity, start, end)
        )
        if keys:
            stmt = stmt.group_by(*keys).order_by(*keys)
        return (await self.session.execute(stmt)).all()


class StorageRepo(TenantRepository[StorageMeasurementRow]):
    model = StorageMeasurementRow

    async def upsert(
        self,
        measurements: Sequence[StorageMeasurement],
        *,
        tenant: TenantContext,
        measured_at: datetime,
    ) -> int:
        tenant_id = self._check(tenant)
        # one row per key (the last wins): an upsert may not touch a row twice
        latest = {(m.measured_on, m.component, m.resource): m for m in measurements}
        values = [
            {"tenant_id": tenant_id, "measured_at": measured_at, **m.model_dump()}
            for m in latest.values()
        ]
        stmt = pg_insert(StorageMeasurementRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "measured_on", "component", "resource"],
            set_={c: stmt.excluded[c] for c in ("bytes", "items", "measured_at", "note")},
        )
        await self.session.execute(stmt)
        return len(values)

    async def between(
        self, *, tenant: TenantContext, start: date, end: date
    ) -> Sequence[StorageMeasurementRow]:
        stmt = (
            self.select(tenant=tenant)
            .where(StorageMeasurementRow.measured_on >= start)
            .where(StorageMeasurementRow.measured_on < end)
            .order_by(
                StorageMeasurementRow.component,
                StorageMeasurementRow.resource,
                StorageMeasurementRow.measured_on,
            )
        )
        return await self.list(stmt)


async def unscoped_usage_by_tenant(
    session: AsyncSession, *, granularity: str, start: datetime, end: datetime, limit: int
) -> Sequence[Row[Any]]:
    """Every tenant's sums, top spenders first (operator role only: reads across tenants)."""
    billed = func.sum(R.billed_amount)
    stmt = (
        select(R.tenant_id, *_sums())
        .where(*_in_range(granularity, start, end))
        .group_by(R.tenant_id)
        .order_by(billed.desc(), R.tenant_id)
        .limit(limit)
    )
    return (await session.execute(stmt)).all()


async def unscoped_usage_totals(
    session: AsyncSession, *, granularity: str, start: datetime, end: datetime
) -> Row[Any]:
    """The sums over every tenant (operator role only)."""
    stmt = select(*_sums()).where(*_in_range(granularity, start, end))
    return (await session.execute(stmt)).one()
