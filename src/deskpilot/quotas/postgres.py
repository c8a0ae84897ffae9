"""The PostgreSQL quota backend (the default without ``REDIS_URL``).

One transaction per reserve, under the tenant's binding:

0. ``SET LOCAL synchronous_commit = off`` (see ``repository.lease_durability``);
1. lock the quota_counters row of every asked window, creating missing ones, in one upsert
   (``INSERT ... ON CONFLICT DO UPDATE`` with a no-op update, ``RETURNING used``): there is a
   row to lock even in a fresh window or for a pure-concurrency dimension. Concurrent
   reservers of the same tenant and dimension queue here, on any process or host; rows are
   locked in (dimension, window start) order, the Meter's order too, so nobody deadlocks;
2. in one statement, delete a batch of the tenant's expired reservations (``SKIP LOCKED``:
   never waits) and sum the open, unexpired holds per window from quota_reservations.amounts;
   in READ COMMITTED this statement's snapshot is taken after the locks were granted, so it
   sees every reservation committed by the previous lock holder;
3. decide; on success, count requests/agent runs into their counters and insert the
   reservation row; commit.

Settle and release delete the row; an expired row is invisible to the sum long before a purge
deletes it, so a process that died never settles and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.db import Database
from deskpilot.quotas.plan import (
    Ask,
    Granted,
    Increments,
    Mode,
    Plan,
    Refused,
    Usage,
    hook_tenant,
)
from deskpilot.quotas.repository import (
    CounterRepo,
    ReservationRepo,
    WindowKey,
    lease_durability,
)
from deskpilot.quotas.schemas import Dimension, Reservation

RETRYABLE = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
ATTEMPTS = 3
ZERO = Decimal(0)


def _windows(asks: Sequence[Ask]) -> list[WindowKey]:
    return [(a.dimension, a.window_start, a.window_end) for a in asks]


def hold_amounts(asks: Sequence[Ask]) -> dict[str, dict[str, str]]:
    """The JSONB form of a reservation's holds: {dimension: {window_start, amount}}."""
    return {
        a.dimension.value: {"window_start": a.window_start.isoformat(), "amount": str(a.amount)}
        for a in asks
        if a.held
    }


class PostgresQuotaBackend:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve(self, plan: Plan, *, tenant: TenantContext) -> Granted | Refused:
        for attempt in range(ATTEMPTS):
            try:
                async with self._db.tenant_session(tenant=tenant) as session:
                    return await self._decide(session, plan, tenant=tenant)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate not in RETRYABLE or attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _decide(
        self, session: AsyncSession, plan: Plan, *, tenant: TenantContext
    ) -> Granted | Refused:
        counters, reservations = CounterRepo(session), ReservationRepo(session)
        await lease_durability(session)
        windows = _windows(plan.asks)
        durable = await counters.lock(windows, tenant=tenant)
        held = await reservations.held(
            [a.dimension for a in plan.asks if a.mode is not Mode.COUNT],
            tenant=tenant,
            now=plan.now,
            purge=True,
        )
        used: dict[Dimension, Decimal] = {}
        for ask in plan.asks:
            key = (ask.dimension, ask.window_start)
            total = durable.get(key, ZERO) + held.get(key, ZERO)
            if total + ask.amount > ask.limit:
                return Refused(ask.dimension, total)
            used[ask.dimension] = total
        for ask in plan.asks:
            if ask.mode is Mode.COUNT and ask.amount > 0:
                window = (ask.dimension, ask.window_start, ask.window_end)
                await counters.increment(window, ask.amount, tenant=tenant)
        amounts = hold_amounts(plan.asks)
        if amounts:
            reservations.insert(
                plan.reservation_id,
                plan.request_id,
                amounts,
                tenant=tenant,
                created_at=plan.now,
                expires_at=plan.expires_at,
            )
        return Granted(used)

    async def remove(self, reservation: Reservation, *, tenant: TenantContext) -> None:
        if not reservation.holds:
            return
        async with self._db.tenant_session(tenant=tenant) as session:
            await lease_durability(session)
            await ReservationRepo(session).remove(reservation.reservation_id, tenant=tenant)

    async def renew(
        self, reservation: Reservation, expires_at: datetime, *, tenant: TenantContext
    ) -> bool:
        now = datetime.now(expires_at.tzinfo)
        async with self._db.tenant_session(tenant=tenant) as session:
            await lease_durability(session)
            return await ReservationRepo(session).extend(
                reservation.reservation_id, expires_at, tenant=tenant, now=now
            )

    async def usage(
        self, asks: Sequence[Ask], *, tenant: TenantContext, now: datetime
    ) -> Mapping[Dimension, Usage]:
        async with self._db.tenant_session(tenant=tenant) as session:
            durable = await CounterRepo(session).read(_windows(asks), tenant=tenant)
            held = await ReservationRepo(session).held(
                [a.dimension for a in asks], tenant=tenant, now=now
            )
        result: dict[Dimension, Usage] = {}
        for ask in asks:
            key = (ask.dimension, ask.window_start)
            holds = held.get(key, ZERO)
            result[ask.dimension] = Usage(durable.get(key, ZERO) + holds, holds)
        return result

    async def durable_changed(
        self, tenant_id: str, increments: Increments, settled: Sequence[Reservation] = ()
    ) -> None:
        """The counters need nothing (this backend reads quota_counters directly); the settled
        reservations are deleted, in one statement."""
        if not settled:
            return
        tenant = hook_tenant(tenant_id)
        async with self._db.tenant_session(tenant=tenant) as session:
            await lease_durability(session)
            ids = [reservation.reservation_id for reservation in settled]
            await ReservationRepo(session).remove_many(ids, tenant=tenant)

    async def gauge_replaced(self, *, tenant: TenantContext, dimension: Dimension) -> None:
        """Nothing to do: this backend reads quota_counters directly."""

    async def purge_expired(self, *, tenant: TenantContext, now: datetime) -> int:
        async with self._db.tenant_session(tenant=tenant) as session:
            return await ReservationRepo(session).purge_expired(tenant=tenant, now=now)
