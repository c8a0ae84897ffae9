"""What the service asks a backend to decide, what it answers, and the backend Protocol.

The service turns a tenant's limits and a request into a ``Plan`` (one ``Ask`` per limited,
requested dimension, in ``Dimension`` order); a backend decides the whole plan atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from deskpilot.core.context import TenantContext
from deskpilot.quotas.schemas import Dimension, Reservation


class DurableDelta(Protocol):
    """What one commit added to one quota counter. The Meter's ``CounterDelta`` fits, so
    ``QuotaService.on_durable`` can be registered as its ``on_durable`` hook as is."""

    @property
    def dimension(self) -> str: ...  # a Dimension value

    @property
    def window_start(self) -> datetime: ...

    @property
    def amount(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class Delta:
    dimension: str
    window_start: datetime
    amount: Decimal


Increments = Sequence[DurableDelta]


class Mode(StrEnum):
    HOLD = "hold"  # durable usage (quota_counters) plus open holds
    SLOT = "slot"  # open holds only (concurrency)
    COUNT = "count"  # counted once at grant, never held (requests, agent runs)


_MODES = {
    Dimension.REQUESTS_PER_MINUTE: Mode.COUNT,
    Dimension.AGENT_RUNS_PER_DAY: Mode.COUNT,
    Dimension.CONCURRENT_AGENT_RUNS: Mode.SLOT,
}


def mode_of(dimension: Dimension) -> Mode:
    return _MODES.get(dimension, Mode.HOLD)


@dataclass(frozen=True, slots=True)
class Ask:
    dimension: Dimension
    window_start: datetime
    window_end: datetime | None
    limit: Decimal
    amount: Decimal

    @property
    def mode(self) -> Mode:
        return mode_of(self.dimension)

    @property
    def held(self) -> bool:
        """Whether a grant holds this amount (counted dimensions and zero amounts are not)."""
        return self.mode is not Mode.COUNT and self.amount > 0


@dataclass(frozen=True, slots=True)
class Plan:
    reservation_id: str
    request_id: str
    asks: tuple[Ask, ...]
    now: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Granted:
    """The plan is held; ``used`` per dimension is what was used (and held) before it."""

    used: Mapping[Dimension, Decimal]


@dataclass(frozen=True, slots=True)
class Refused:
    """The first ask (in ``Dimension`` order) that did not fit, and what was used before it."""

    dimension: Dimension
    used: Decimal


@dataclass(frozen=True, slots=True)
class Usage:
    used: Decimal  # durable (or counted) plus held
    held: Decimal


def hook_tenant(tenant_id: str) -> TenantContext:
    """The Meter's post-commit hook names tenants by id, taken from rows it has just committed
    (never from request input). Keys and sessions still take a context; this one carries no
    configuration and no scopes and is used for nothing else."""
    return TenantContext(
        tenant_id=tenant_id, tier="", config={}, principal="quotas:meter", scopes=frozenset()
    )


class QuotaBackend(Protocol):
    """Where holds and counts live. Every method is scoped to one tenant."""

    async def reserve(self, plan: Plan, *, tenant: TenantContext) -> Granted | Refused:
        """All asks granted and held, or none."""
        ...

    async def remove(self, reservation: Reservation, *, tenant: TenantContext) -> None:
        """Drop the reservation's holds; a no-op when they are already gone."""
        ...

    async def renew(
        self, reservation: Reservation, expires_at: datetime, *, tenant: TenantContext
    ) -> bool:
        """Move the lease; False when the holds are gone (settled, released or expired)."""
        ...

    async def usage(
        self, asks: Sequence[Ask], *, tenant: TenantContext, now: datetime
    ) -> Mapping[Dimension, Usage]:
        """Current usage of each ask's window (the asks' amounts are ignored)."""
        ...

    async def durable_changed(
        self, tenant_id: str, increments: Increments, settled: Sequence[Reservation] = ()
    ) -> None:
        """The Meter committed these increments to quota_counters, and the work of the
        ``settled`` reservations (the tenant's, each with holds) is done: drop their holds."""
        ...

    async def gauge_replaced(self, *, tenant: TenantContext, dimension: Dimension) -> None:
        """A gauge's durable value was overwritten (``set_gauge``)."""
        ...

    async def purge_expired(self, *, tenant: TenantContext, now: datetime) -> int:
        """Delete expired reservations of the tenant; how many were removed."""
        ...
