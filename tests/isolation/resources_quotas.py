"""Quotas' resources in the isolation suite: counters (a stored-amount gauge) and open
reservations. Tenant B presents A's reservation id to settle, release and renew it, and reads
its own status; A's holds and counters must be untouched."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from deskpilot.platform import Platform
from deskpilot.quotas import (
    Dimension,
    QuotaService,
    Reservation,
    ReservationLost,
    quota_backend,
)
from tests.conftest import TenantFixture
from tests.isolation.registry import HttpPath, PythonPath, Resource, Seeded, marker, register

TOKENS = Dimension.TOKENS_PER_PERIOD
RUNS = Dimension.CONCURRENT_AGENT_RUNS
DOCS = Dimension.DOCUMENTS


def quotas(platform: Platform) -> QuotaService:
    return QuotaService(platform.resources, quota_backend(platform.resources))


async def seed(platform: Platform, a: TenantFixture) -> Seeded:
    request_id = marker("quota-request")
    service = quotas(platform)
    await service.adjust_gauge(tenant=a.context, dimension=DOCS, delta=7)
    reservation = await service.reserve(
        tenant=a.context, request_id=request_id, amounts={TOKENS: 1234, RUNS: 1}
    )
    return Seeded(
        ids={"reservation_id": reservation.reservation_id, "tenant_id": a.slug},
        markers=frozenset({reservation.reservation_id, request_id}),
        extra={"reservation": reservation},
    )


async def intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    statuses = {s.dimension: s for s in await quotas(platform).status(tenant=a.context)}
    assert statuses[TOKENS].held == Decimal(1234)
    assert statuses[RUNS].held == 1
    assert statuses[DOCS].used == 7
    await quotas(platform).release(seeded.extra["reservation"], tenant=a.context)


def presented_by(b: TenantFixture, seeded: Seeded) -> Reservation:
    """A's reservation id (and holds) as B would present it: under B's tenant."""
    reservation: Reservation = seeded.extra["reservation"]
    return replace(reservation, tenant_id=b.slug)


async def renew_as(platform: Platform, b: TenantFixture, seeded: Seeded) -> None:
    try:
        await quotas(platform).renew(presented_by(b, seeded), tenant=b.context, lease_seconds=3600)
    except ReservationLost:
        return
    raise AssertionError("B renewed a reservation it does not hold")


register(
    Resource(
        name="quota",
        component="quotas",
        tables=("quota_counters", "quota_reservations"),
        seed=seed,
        intact=intact,
        python_paths=(
            PythonPath("status", "read", lambda p, b, s: quotas(p).status(tenant=b.context)),
            PythonPath(
                "settle A's reservation id",
                "delete",
                lambda p, b, s: quotas(p).settle(presented_by(b, s), tenant=b.context),
            ),
            PythonPath(
                "release A's reservation id",
                "delete",
                lambda p, b, s: quotas(p).release(presented_by(b, s), tenant=b.context),
            ),
            PythonPath("renew A's reservation id", "update", renew_as),
            PythonPath(
                "purge expired", "delete", lambda p, b, s: quotas(p).purge_expired(tenant=b.context)
            ),
        ),
        http_paths=(HttpPath("usage and quotas", "read", "GET", "/v1/usage"),),
    )
)
