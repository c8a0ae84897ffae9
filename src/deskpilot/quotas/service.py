"""The quota service: reserve before work, settle after it, release on failure.

Limits come from the tenant's ``quotas`` config section. A reservation asks for amounts per
dimension; every asked dimension that has a limit is checked, all at once, by the backend
(PostgreSQL or Redis): granted and held as a whole, or refused naming the first dimension (in
``Dimension`` order) that does not fit. Holds carry a lease: a process that dies never settles,
and its holds stop counting when the lease ends.

Usage itself is durable elsewhere: the Meter adds tokens and spend to quota_counters in its
ledger transaction, which commits before ``settle``. The service counts requests and agent
runs at grant, and components report stored amounts (gauges) with ``adjust_gauge``/``set_gauge``.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import TenantScopeError
from deskpilot.core.resources import Resources
from deskpilot.quotas import repository
from deskpilot.quotas.config import QuotasConfig
from deskpilot.quotas.plan import Ask, Delta, Granted, Increments, Plan, QuotaBackend, Refused
from deskpilot.quotas.postgres import PostgresQuotaBackend
from deskpilot.quotas.redis_backend import RedisQuotaBackend
from deskpilot.quotas.repository import CounterRepo
from deskpilot.quotas.schemas import (
    Dimension,
    Hold,
    QuotaExceeded,
    QuotaState,
    QuotaStatus,
    QuotaWarning,
    Reservation,
    ReservationLost,
    Window,
)
from deskpilot.quotas.windows import GAUGE_WINDOW_START, window_for

log = logging.getLogger(__name__)

Amount = Decimal | int
GAUGES = frozenset({Dimension.DOCUMENTS, Dimension.STORAGE_BYTES, Dimension.CACHE_BYTES})
WARNED_MEMORY = 10_000  # tenant x dimension x window entries remembered for warning dedup
HUNDRED = Decimal(100)


def quota_backend(resources: Resources) -> QuotaBackend:
    """Redis when the deployment has it (shared by every process), else PostgreSQL."""
    if resources.redis is not None:
        return RedisQuotaBackend(resources.redis, resources.db)
    return PostgresQuotaBackend(resources.db)


def limits(tenant: TenantContext) -> QuotasConfig:
    return tenant.parsed("quotas", QuotasConfig)


def _limit(config: QuotasConfig, dimension: Dimension) -> Decimal | None:
    value: int | Decimal | None = getattr(config, dimension.value)
    return None if value is None else Decimal(value)


def _amount(dimension: Dimension, value: Amount) -> Decimal:
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{dimension.value}: amount must be a finite number >= 0, not {value}")
    if dimension is not Dimension.SPEND_PER_PERIOD and amount != amount.to_integral_value():
        raise ValueError(f"{dimension.value}: amount must be a whole number, not {value}")
    return amount


def _check_owner(reservation: Reservation, tenant: TenantContext) -> None:
    if reservation.tenant_id != tenant.tenant_id:
        raise TenantScopeError(
            f"reservation of {reservation.tenant_id!r} used for {tenant.tenant_id!r}"
        )


class QuotaService:
    def __init__(self, resources: Resources, backend: QuotaBackend) -> None:
        self._db = resources.db
        self._backend = backend
        self._warned: OrderedDict[tuple[str, Dimension, datetime], None] = OrderedDict()

    async def reserve(
        self,
        *,
        tenant: TenantContext,
        request_id: str,
        amounts: Mapping[Dimension, Amount],
        lease_seconds: float = 120,
    ) -> Reservation:
        """Hold ``amounts`` for one piece of work, or raise ``QuotaExceeded``."""
        if not 0 < len(request_id) <= 128:
            raise ValueError("request_id must be 1..128 characters")
        if not lease_seconds > 0:
            raise ValueError("lease_seconds must be positive")
        config, now = limits(tenant), datetime.now(UTC)
        asked = {Dimension(d): _amount(Dimension(d), v) for d, v in amounts.items()}
        asks = tuple(self._asks(config, asked, tenant=tenant, now=now))
        plan = Plan(
            secrets.token_hex(16), request_id, asks, now, now + timedelta(seconds=lease_seconds)
        )
        outcome = await self._backend.reserve(plan, tenant=tenant) if asks else Granted({})
        if isinstance(outcome, Refused):
            ask = next(a for a in asks if a.dimension is outcome.dimension)
            raise QuotaExceeded(
                ask.dimension,
                limit=ask.limit,
                used=outcome.used,
                requested=ask.amount,
                reset_at=ask.window_end,
            )
        return Reservation(
            reservation_id=plan.reservation_id,
            tenant_id=tenant.tenant_id,
            request_id=request_id,
            holds=tuple(
                Hold(a.dimension, a.window_start, a.window_end, a.amount) for a in asks if a.held
            ),
            expires_at=plan.expires_at,
            warnings=self._warnings(asks, outcome, config.soft_threshold, tenant=tenant),
        )

    def _asks(
        self,
        config: QuotasConfig,
        amounts: Mapping[Dimension, Decimal],
        *,
        tenant: TenantContext,
        now: datetime,
    ) -> list[Ask]:
        asks = []
        for dimension in Dimension:  # definition order: the order refusals are reported in
            limit = _limit(config, dimension)
            if dimension in amounts and limit is not None:
                start, end = window_for(dimension, anchor_day=tenant.billing_anchor_day, at=now)
                asks.append(Ask(dimension, start, end, limit, amounts[dimension]))
        return asks

    def _warnings(
        self,
        asks: tuple[Ask, ...],
        granted: Granted,
        threshold: Decimal,
        *,
        tenant: TenantContext,
    ) -> tuple[QuotaWarning, ...]:
        warnings = []
        for ask in asks:
            after = granted.used[ask.dimension] + ask.amount
            if ask.limit > 0 and after >= ask.limit * threshold:
                warnings.append(QuotaWarning(ask.dimension, ask.limit, after, ask.window_end))
                self._log_warning(ask, after, tenant=tenant)
        return tuple(warnings)

    def _log_warning(self, ask: Ask, used: Decimal, *, tenant: TenantContext) -> None:
        """Once per tenant x dimension x window in this process (best effort)."""
        key = (tenant.tenant_id, ask.dimension, ask.window_start)
        if key in self._warned:
            return
        self._warned[key] = None
        if len(self._warned) > WARNED_MEMORY:
            self._warned.popitem(last=False)
        log.warning(
            "quota soft threshold reached",
            extra={
                "tenant_id": tenant.tenant_id,
                "quota": ask.dimension.value,
                "limit": str(ask.limit),
                "used": str(used),
                "window_start": ask.window_start.isoformat(),
                "reset_at": ask.window_end.isoformat() if ask.window_end else None,
            },
        )

    async def settle(self, reservation: Reservation, *, tenant: TenantContext) -> None:
        """The work is done and its usage recorded: drop the holds (frees concurrency slots)."""
        _check_owner(reservation, tenant)
        await self._backend.remove(reservation, tenant=tenant)

    async def release(self, reservation: Reservation, *, tenant: TenantContext) -> None:
        """The work failed: drop the holds. Idempotent; a no-op once settled or expired."""
        _check_owner(reservation, tenant)
        await self._backend.remove(reservation, tenant=tenant)

    async def renew(
        self, reservation: Reservation, *, tenant: TenantContext, lease_seconds: float
    ) -> Reservation:
        """Extend the lease from now; ``ReservationLost`` if the holds are already gone."""
        _check_owner(reservation, tenant)
        if not lease_seconds > 0:
            raise ValueError("lease_seconds must be positive")
        expires_at = datetime.now(UTC) + timedelta(seconds=lease_seconds)
        if reservation.holds and not await self._backend.renew(
            reservation, expires_at, tenant=tenant
        ):
            raise ReservationLost(
                f"reservation {reservation.reservation_id} was settled, released or expired"
            )
        return replace(reservation, expires_at=expires_at)

    async def status(self, *, tenant: TenantContext) -> list[QuotaStatus]:
        """Every limited dimension in its current window: used (settled + held) vs limit."""
        config, now = limits(tenant), datetime.now(UTC)
        asks = self._asks(config, dict.fromkeys(Dimension, Decimal(0)), tenant=tenant, now=now)
        if not asks:
            return []
        usage = await self._backend.usage(asks, tenant=tenant, now=now)
        return [
            _status(ask, usage[ask.dimension].used, usage[ask.dimension].held, config)
            for ask in asks
        ]

    async def adjust_gauge(
        self, *, tenant: TenantContext, dimension: Dimension, delta: Amount
    ) -> Decimal:
        """A component stored (delta > 0) or deleted (delta < 0) an amount; returns the new
        total (never below zero)."""
        change = Decimal(delta)
        _amount(_gauge(dimension), abs(change))
        window = (dimension, GAUGE_WINDOW_START, None)
        async with self._db.tenant_session(tenant=tenant) as session:
            total = await CounterRepo(session).increment(window, change, tenant=tenant)
        await self._backend.durable_changed(
            tenant.tenant_id, [Delta(dimension.value, GAUGE_WINDOW_START, change)]
        )
        return total

    async def set_gauge(
        self, *, tenant: TenantContext, dimension: Dimension, value: Amount
    ) -> None:
        """Replace a gauge with a measured total (the daily storage measurement)."""
        total = _amount(_gauge(dimension), value)
        window = (dimension, GAUGE_WINDOW_START, None)
        async with self._db.tenant_session(tenant=tenant) as session:
            await CounterRepo(session).replace(window, total, tenant=tenant)
        await self._backend.gauge_replaced(tenant=tenant, dimension=dimension)

    async def on_durable(
        self, tenant_id: str, increments: Increments, settled: Sequence[Reservation] = ()
    ) -> None:
        """The Meter's hook (``meter.on_durable(quotas.on_durable)``), called after each commit
        with what it added per counter (dimension, window start, amount) and the reservations
        whose work it finished (``Meter.record(settles=...)``). Drops those holds and, on
        Redis, moves the mirrors in the same call: the usage is never counted both as held and
        as used, nor as neither."""
        for reservation in settled:
            if reservation.tenant_id != tenant_id:
                raise TenantScopeError(
                    f"reservation of {reservation.tenant_id!r} settled for {tenant_id!r}"
                )
        await self._backend.durable_changed(tenant_id, increments, [r for r in settled if r.holds])

    async def purge_expired(self, *, tenant: TenantContext) -> int:
        return await self._backend.purge_expired(tenant=tenant, now=datetime.now(UTC))

    async def unscoped_purge_expired(self, *, keep: timedelta = timedelta(days=2)) -> int:
        """Maintenance across every tenant (operator role): expired reservations, and minute
        and day counters older than ``keep``."""
        async with self._db.dangerously_unscoped_session() as session:
            return await repository.unscoped_purge(session, now=datetime.now(UTC), keep=keep)


def _gauge(dimension: Dimension) -> Dimension:
    if dimension not in GAUGES:
        raise ValueError(f"{dimension.value} is not a stored-amount gauge")
    return dimension


def _status(ask: Ask, used: Decimal, held: Decimal, config: QuotasConfig) -> QuotaStatus:
    limit = ask.limit
    percent = (used * HUNDRED / limit).quantize(Decimal("0.1")) if limit else HUNDRED
    if used >= limit:
        state = QuotaState.EXCEEDED
    elif used >= limit * config.soft_threshold:
        state = QuotaState.WARNING
    else:
        state = QuotaState.OK
    window = ask.dimension.window
    return QuotaStatus(
        dimension=ask.dimension,
        window=window,
        limit=limit,
        used=used,
        held=held,
        window_start=ask.window_start,
        window_end=ask.window_end if window is not Window.NONE else None,
        percent=percent,
        state=state,
    )
