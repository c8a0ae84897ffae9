"""Metering's resources in the isolation suite: the usage ledger (with its idempotency keys and
rollups) and storage measurements. Tenant B reads its own reports and records with A's request
id and A's resource names; A's events, rollups and measurements must be untouched.

HTTP: the usage report (JSON and CSV), the ledger export and the operator report.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import Forbidden
from deskpilot.metering import (
    Meter,
    PriceTable,
    RecordedUsage,
    StorageMeasurement,
    UsageEvent,
    UsageHandle,
    statements,
    to_money,
)
from deskpilot.metering.batch import Pending, TenantGroup, function_arguments
from deskpilot.metering.rows import ledger_row
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.isolation.registry import HttpPath, PythonPath, Resource, Seeded, marker, register

WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
TODAY = date(2026, 6, 1)
PERIOD = (TODAY, date(2026, 7, 1))


_RANGE = "start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z"
USAGE_HTTP_PATHS = (
    HttpPath("usage report", "read", "GET", "/v1/usage"),
    HttpPath("usage report, all time", "read", "GET", f"/v1/usage?{_RANGE}&group_by=model"),
    HttpPath("usage report as CSV", "read", "GET", f"/v1/usage?{_RANGE}&format=csv"),
    HttpPath("ledger export", "list", "GET", f"/v1/usage/events?{_RANGE}"),
    HttpPath("ledger export as CSV", "list", "GET", f"/v1/usage/events?{_RANGE}&format=csv"),
    HttpPath("operator report", "list", "GET", f"/admin/usage?{_RANGE}"),
)


def usage(platform: Platform, tenant: TenantFixture) -> UsageHandle:
    return UsageHandle(platform.resources, PriceTable.load(), tenant.context)


async def record(platform: Platform, tenant: TenantFixture, event: UsageEvent) -> RecordedUsage:
    meter = Meter(platform.resources, PriceTable.load())
    try:
        return await meter.record(event, tenant=tenant.context)
    finally:
        await meter.close()


# ---- usage events (ledger, idempotency keys, rollups) -------------------------------------


def event_like(seeded: Seeded) -> UsageEvent:
    return UsageEvent(
        component="gateway",
        operation="chat",
        request_id=seeded.extra["request_id"],
        provider="local",
        provider_model="planted-by-b",
        input_tokens=1,
    )


async def seed_event(platform: Platform, a: TenantFixture) -> Seeded:
    model, kb = marker("model"), marker("kb")
    request_id = f"req-{uuid.uuid4().hex}"  # B sends it back: not a marker of A
    recorded = await record(
        platform,
        a,
        UsageEvent(
            component="rag",
            operation="answer",
            request_id=request_id,
            provider="local",
            provider_model=model,
            knowledge_base=kb,
            input_tokens=4321,
        ),
    )
    return Seeded(
        ids={"event_id": recorded.event_id, "tenant_id": a.slug},
        markers=frozenset({recorded.event_id, model, kb}),
        extra={"request_id": request_id, "recorded": recorded},
    )


async def event_intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    page = await usage(platform, a).events(*WIDE)
    assert [e.event_id for e in page.events] == [seeded.ids["event_id"]]
    assert page.events[0].input_tokens == 4321
    summary = await usage(platform, a).summary(*WIDE, group_by=())
    assert (summary.totals.events, summary.totals.input_tokens) == (1, 4321)
    again = await record(
        platform,
        a,
        UsageEvent(component="rag", operation="answer", request_id=seeded.extra["request_id"]),
    )
    assert again.duplicate
    assert again.event_id == seeded.ids["event_id"]


async def record_as_b_with_as_request_id(
    platform: Platform, b: TenantFixture, seeded: Seeded
) -> RecordedUsage:
    recorded = await record(platform, b, event_like(seeded))
    assert not recorded.duplicate, "B's record was taken for a repeat of A's"
    assert recorded.event_id != seeded.ids["event_id"]
    assert recorded.tenant_id == b.slug
    return recorded


async def ledger_function_from_bs_session(
    platform: Platform, b: TenantFixture, seeded: Seeded
) -> list[Any]:
    """A session of B (the application role, bound to B) calls the ledger's batch function
    naming A: refused, only the ledger writer's own connection (the owner) may call it."""
    a = TenantContext(
        tenant_id=seeded.ids["tenant_id"], tier="", config={}, principal="b", scopes=frozenset()
    )
    event = UsageEvent(component="gateway", operation="chat", request_id=marker("b-forged"))
    row = ledger_row(
        event,
        tenant=a,
        charge=PriceTable.load().charge(event, markup_percent=Decimal(0)),
        reservation_id=None,
        now=datetime.now(UTC),
    )
    group = TenantGroup(a)
    group.primaries.append(Pending(a, row, False, asyncio.get_running_loop().create_future()))
    try:
        async with platform.resources.db.tenant_session(tenant=b.context) as session:
            connection = await (await session.connection()).get_raw_connection()
            return list(
                await connection.driver_connection.fetch(
                    statements.RECORD_CALL, *function_arguments([group])
                )
            )
    except asyncpg.exceptions.InsufficientPrivilegeError:
        raise Forbidden("the ledger function is not the application role's") from None


register(
    Resource(
        name="usage_event",
        component="metering",
        tables=("usage_events", "usage_keys", "usage_rollups"),
        seed=seed_event,
        intact=event_intact,
        python_paths=(
            PythonPath(
                "summary",
                "read",
                lambda p, b, s: usage(p, b).summary(
                    *WIDE, group_by=("bucket", "component", "operation", "model")
                ),
            ),
            PythonPath("list events", "list", lambda p, b, s: usage(p, b).events(*WIDE)),
            PythonPath(
                "list events after a cursor at A's event",
                "list",
                lambda p, b, s: usage(p, b).events(*WIDE, after=f"0.{s.ids['event_id']}"),
            ),
            PythonPath("record with A's request id", "update", record_as_b_with_as_request_id),
            PythonPath(
                "ledger function naming A, from B's session",
                "update",
                ledger_function_from_bs_session,
            ),
        ),
        http_paths=USAGE_HTTP_PATHS,
    )
)


# ---- storage measurements -----------------------------------------------------------------


async def seed_storage(platform: Platform, a: TenantFixture) -> Seeded:
    resource, note = marker("kb"), marker("note")
    meter = Meter(platform.resources, PriceTable.load())
    await meter.record_storage(
        [
            StorageMeasurement(
                measured_on=TODAY, component="rag", resource=resource, bytes=777_777, note=note
            )
        ],
        tenant=a.context,
    )
    await meter.close()
    return Seeded(
        ids={"tenant_id": a.slug}, markers=frozenset({resource, note}), extra={"resource": resource}
    )


async def storage_intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    report = await usage(platform, a).storage(*PERIOD)
    assert [(line.resource, line.days_measured) for line in report.lines] == [
        (seeded.extra["resource"], 1)
    ]
    # one day of a 30-day billing period
    assert report.lines[0].gb_months == to_money(Decimal(777_777) / 1024**3 / 30)


async def measure_as_b_under_as_name(platform: Platform, b: TenantFixture, seeded: Seeded) -> int:
    meter = Meter(platform.resources, PriceTable.load())
    try:
        return await meter.record_storage(
            [
                StorageMeasurement(
                    measured_on=TODAY, component="rag", resource=seeded.extra["resource"], bytes=1
                )
            ],
            tenant=b.context,
        )
    finally:
        await meter.close()


register(
    Resource(
        name="storage_measurement",
        component="metering",
        tables=("storage_measurements",),
        seed=seed_storage,
        intact=storage_intact,
        python_paths=(
            PythonPath("storage report", "read", lambda p, b, s: usage(p, b).storage(*PERIOD)),
            PythonPath("measure under A's resource name", "update", measure_as_b_under_as_name),
        ),
        http_paths=(HttpPath("usage report", "read", "GET", "/v1/usage"),),
    )
)
