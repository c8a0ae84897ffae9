"""Queries on quota_counters and quota_reservations, always under one tenant's binding.

The only cross-tenant statement is ``unscoped_purge`` (maintenance, operator role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import String, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.repository import TenantRepository
from deskpilot.quotas.models import QuotaCounterRow, QuotaReservationRow
from deskpilot.quotas.schemas import Dimension, Window

# quota_counters.window_end is NOT NULL; gauges' single window never ends.
GAUGE_WINDOW_END = datetime(9999, 12, 31, tzinfo=UTC)
PURGE_BATCH = 500

CounterKey = tuple[Dimension, datetime]
WindowKey = tuple[Dimension, datetime, datetime | None]  # dimension, start, end

_DIMS = bindparam("dims", type_=ARRAY(String))
_HELD = text(
    "SELECT h.key, (h.value->>'window_start')::timestamptz, sum((h.value->>'amount')::numeric) "
    "FROM quota_reservations AS r CROSS JOIN LATERAL jsonb_each(r.amounts) AS h "
    "WHERE r.tenant_id = :tenant AND r.expires_at > :now AND h.key = ANY(:dims) "
    "GROUP BY 1, 2"
).bindparams(_DIMS)
# The same, after deleting a batch of the tenant's expired rows in the same round trip (the
# SELECT does not see them either way: it only sums unexpired holds).
_PURGE_THEN_HELD = text(
    "WITH purged AS (DELETE FROM quota_reservations WHERE tenant_id = :tenant AND "
    "reservation_id IN (SELECT reservation_id FROM quota_reservations WHERE tenant_id = :tenant "
    "AND expires_at <= :now LIMIT :batch FOR UPDATE SKIP LOCKED)) "
    "SELECT h.key, (h.value->>'window_start')::timestamptz, sum((h.value->>'amount')::numeric) "
    "FROM quota_reservations AS r CROSS JOIN LATERAL jsonb_each(r.amounts) AS h "
    "WHERE r.tenant_id = :tenant AND r.expires_at > :now AND h.key = ANY(:dims) "
    "GROUP BY 1, 2"
).bindparams(_DIMS)


_LEASE_DURABILITY = text("SET LOCAL synchronous_commit = off")


async def lease_durability(session: AsyncSession) -> None:
    """Commit this transaction without waiting for its WAL flush. For holds (leases that expire
    anyway) and request counts: a PostgreSQL crash can lose the last few hundred milliseconds
    of them, never leave them inconsistent. Never used for usage, gauges or the ledger."""
    await session.execute(_LEASE_DURABILITY)


def _keys(windows: Sequence[WindowKey]) -> list[tuple[str, datetime]]:
    return [(d.value, start) for d, start, _ in windows]


class CounterRepo(TenantRepository[QuotaCounterRow]):
    model = QuotaCounterRow

    async def lock(
        self, windows: Sequence[WindowKey], *, tenant: TenantContext
    ) -> dict[CounterKey, Decimal]:
        """Create missing counter rows and lock all of them, returning their used amounts.

        One statement: an upsert whose no-op update takes the row lock (as ``FOR UPDATE``
        would) on rows that exist and returns them too. Rows are sent, hence locked, in
        (dimension, window start) order, the order every writer of these rows (the Meter
        included) uses, so that concurrent transactions never deadlock on them.
        """
        tenant_id = self._check(tenant)
        now = datetime.now(UTC)
        rows = [
            {
                "tenant_id": tenant_id,
                "dimension": d.value,
                "window_start": start,
                "window_end": end or GAUGE_WINDOW_END,
                "used": Decimal(0),
                "updated_at": now,
            }
            for d, start, end in sorted(windows, key=lambda w: (w[0].value, w[1]))
        ]
        table = QuotaCounterRow.__table__.c
        stmt = insert(QuotaCounterRow).values(rows)
        upsert = stmt.on_conflict_do_update(
            index_elements=[table.tenant_id, table.dimension, table.window_start],
            set_={"used": table.used},
        ).returning(table.dimension, table.window_start, table.used)
        result = (await self.session.execute(upsert)).all()
        return {(Dimension(d), start): used for d, start, used in result}

    async def read(
        self, windows: Sequence[WindowKey], *, tenant: TenantContext
    ) -> dict[CounterKey, Decimal]:
        """Used amounts of the rows that exist (no lock)."""
        stmt = (
            select(QuotaCounterRow.dimension, QuotaCounterRow.window_start, QuotaCounterRow.used)
            .where(QuotaCounterRow.tenant_id == self._check(tenant))
            .where(
                tuple_(QuotaCounterRow.dimension, QuotaCounterRow.window_start).in_(_keys(windows))
            )
        )
        rows = (await self.session.execute(stmt)).all()
        return {(Dimension(d), start): used for d, start, used in rows}

    async def increment(
        self, window: WindowKey, delta: Decimal, *, tenant: TenantContext
    ) -> Decimal:
        """``used += delta`` (never below zero), creating the row; returns the new value."""
        return await self._upsert(window, delta, tenant=tenant, replace=False)

    async def replace(self, window: WindowKey, value: Decimal, *, tenant: TenantContext) -> None:
        await self._upsert(window, value, tenant=tenant, replace=True)

    async def _upsert(
        self, window: WindowKey, amount: Decimal, *, tenant: TenantContext, replace: bool
    ) -> Decimal:
        dimension, start, end = window
        now = datetime.now(UTC)
        stmt = insert(QuotaCounterRow).values(
            tenant_id=self._check(tenant),
            dimension=dimension.value,
            window_start=start,
            window_end=end or GAUGE_WINDOW_END,
            used=max(amount, Decimal(0)),
            updated_at=now,
        )
        table = QuotaCounterRow.__table__.c
        new_used: Any = (
            stmt.excluded.used if replace else func.greatest(table.used + amount, Decimal(0))
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[table.tenant_id, table.dimension, table.window_start],
            set_={"used": new_used, "updated_at": now},
        ).returning(table.used)
        used: Decimal = (await self.session.execute(upsert)).scalar_one()
        return used


class ReservationRepo(TenantRepository[QuotaReservationRow]):
    model = QuotaReservationRow

    async def held(
        self,
        dimensions: Sequence[Dimension],
        *,
        tenant: TenantContext,
        now: datetime,
        purge: bool = False,
    ) -> dict[CounterKey, Decimal]:
        """Sum of open, unexpired holds per (dimension, window); with ``purge``, a batch of
        expired rows is deleted in the same statement (skipping rows others have locked)."""
        params = {
            "tenant": self._check(tenant),
            "now": now,
            "dims": [d.value for d in dimensions],
            "batch": PURGE_BATCH,
        }
        rows = (await self.session.execute(_PURGE_THEN_HELD if purge else _HELD, params)).all()
        return {(Dimension(d), start): amount for d, start, amount in rows}

    def insert(
        self,
        reservation_id: str,
        request_id: str,
        amounts: Mapping[str, Any],
        *,
        tenant: TenantContext,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        row = QuotaReservationRow(
            reservation_id=reservation_id,
            request_id=request_id,
            amounts=dict(amounts),
            created_at=created_at,
            expires_at=expires_at,
        )
        self.add(row, tenant=tenant)

    async def remove(self, reservation_id: str, *, tenant: TenantContext) -> int:
        return await self.delete_where(tenant=tenant, reservation_id=reservation_id)

    async def remove_many(self, reservation_ids: Sequence[str], *, tenant: TenantContext) -> int:
        """Delete these reservations (their hold rows) in one statement."""
        stmt = (
            delete(QuotaReservationRow)
            .where(QuotaReservationRow.tenant_id == self._check(tenant))
            .where(QuotaReservationRow.reservation_id.in_(reservation_ids))
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def extend(
        self, reservation_id: str, expires_at: datetime, *, tenant: TenantContext, now: datetime
    ) -> bool:
        """Move an unexpired reservation's lease; False if it is gone or expired."""
        stmt = (
            update(QuotaReservationRow)
            .where(QuotaReservationRow.tenant_id == self._check(tenant))
            .where(QuotaReservationRow.reservation_id == reservation_id)
            .where(QuotaReservationRow.expires_at > now)
            .values(expires_at=expires_at)
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def purge_expired(self, *, tenant: TenantContext, now: datetime) -> int:
        """Delete up to a batch of expired rows, skipping rows another transaction holds."""
        tenant_id = self._check(tenant)
        expired = (
            select(QuotaReservationRow.reservation_id)
            .where(QuotaReservationRow.tenant_id == tenant_id)
            .where(QuotaReservationRow.expires_at <= now)
            .limit(PURGE_BATCH)
            .with_for_update(skip_locked=True)
        )
        stmt = delete(QuotaReservationRow).where(
            QuotaReservationRow.tenant_id == tenant_id,
            QuotaReservationRow.reservation_id.in_(expired.scalar_subquery()),
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]


async def unscoped_purge(session: AsyncSession, *, now: datetime, keep: timedelta) -> int:
    """Every tenant (operator role): delete expired reservations, and minute and day counters
    whose window ended more than ``keep`` ago (the ledger keeps the history; period counters
    and gauges stay)."""
    gone = await session.execute(
        delete(QuotaReservationRow).where(QuotaReservationRow.expires_at <= now)
    )
    short = [d.value for d in Dimension if d.window in (Window.MINUTE, Window.DAY)]
    old = await session.execute(
        delete(QuotaCounterRow)
        .where(QuotaCounterRow.dimension.in_(short))
        .where(QuotaCounterRow.window_end < now - keep)
    )
    return int(gone.rowcount) + int(old.rowcount)  # type: ignore[attr-defined]
