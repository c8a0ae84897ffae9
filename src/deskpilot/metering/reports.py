"""Usage reports: summaries from the rollups (never a scan of the ledger), ledger export pages,
storage charges, and the operator's cross-tenant top spenders. Services run inside a unit of
work they are given and never commit (``handles.py`` owns the transactions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import FieldError, ValidationFailed
from deskpilot.metering import repository as repo
from deskpilot.metering.prices import PriceTable, billed, markup_of, to_money
from deskpilot.metering.rows import EPOCH
from deskpilot.metering.schemas import (
    EventPage,
    Granularity,
    GroupBy,
    LedgerEvent,
    StorageCharge,
    StorageReport,
    TenantUsage,
    UsageSummary,
    UsageSummaryRow,
    UsageTotals,
)
from deskpilot.quotas import period_bounds

GIB = Decimal(1024**3)
MAX_PAGE = 1000
_MICRO = timedelta(microseconds=1)


def _refuse(path: str, message: str) -> ValidationFailed:
    return ValidationFailed("invalid usage query", (FieldError(path, message),))


def check_range(start: datetime, end: datetime) -> None:
    if start.utcoffset() is None or end.utcoffset() is None:
        raise _refuse("start", "start and end must carry a time zone (UTC)")
    if end <= start:
        raise _refuse("end", "must be after start")


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    return f"{(occurred_at - EPOCH) // _MICRO}.{event_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    micros, _, event_id = cursor.partition(".")
    if not micros.lstrip("-").isdigit() or not event_id.isalnum() or len(event_id) > 32:
        raise _refuse("after", "not a cursor returned by a previous page")
    return EPOCH + int(micros) * _MICRO, event_id


def _totals(row: Row[Any]) -> dict[str, Any]:
    values = row._mapping
    totals: dict[str, Any] = {c: int(values[c]) for c in repo.SUMMED[:6]}
    totals["provider_cost"] = Decimal(values["provider_cost"])
    totals["billed_amount"] = Decimal(values["billed_amount"])
    return totals


def _add(rows: Sequence[UsageTotals]) -> UsageTotals:
    sums: dict[str, Any] = {name: sum(getattr(r, name) for r in rows) for name in repo.SUMMED}
    sums["provider_cost"] = Decimal(sums["provider_cost"])
    sums["billed_amount"] = Decimal(sums["billed_amount"])
    return UsageTotals(**sums)


class UsageReports:
    def __init__(self, session: AsyncSession) -> None:
        self._events = repo.UsageEventRepo(session)
        self._rollups = repo.UsageRollupRepo(session)
        self._storage = repo.StorageRepo(session)

    async def usage_summary(
        self,
        *,
        tenant: TenantContext,
        start: datetime,
        end: datetime,
        granularity: Granularity = "day",
        group_by: Sequence[GroupBy] = ("component", "model"),
    ) -> UsageSummary:
        """Totals per group of the rollup buckets starting in ``[start, end)`` (align the
        range to the granularity: a bucket is counted whole or not at all)."""
        tenant.require(Scope.USAGE_READ)
        check_range(start, end)
        group_by = tuple(dict.fromkeys(group_by))
        found = await self._rollups.summary(
            tenant=tenant, granularity=granularity, start=start, end=end, group_by=group_by
        )
        rows = [
            UsageSummaryRow(
                **_totals(r),
                **{("bucket_start" if g == "bucket" else g): r._mapping[g] for g in group_by},
            )
            for r in found
        ]
        if not group_by:
            rows = [r for r in rows if r.events]
        return UsageSummary(
            start=start,
            end=end,
            granularity=granularity,
            group_by=group_by,
            rows=rows,
            totals=_add(rows),
        )

    async def list_events(
        self,
        *,
        tenant: TenantContext,
        start: datetime,
        end: datetime,
        limit: int = 100,
        after: str | None = None,
    ) -> EventPage:
        """One page of the tenant's ledger for export, oldest first."""
        tenant.require(Scope.USAGE_READ)
        check_range(start, end)
        if not 1 <= limit <= MAX_PAGE:
            raise _refuse("limit", f"must be 1..{MAX_PAGE}")
        cursor = decode_cursor(after) if after is not None else None
        rows = await self._events.page(
            tenant=tenant, start=start, end=end, limit=limit, after=cursor
        )
        events = [LedgerEvent.model_validate(r) for r in rows]
        last = events[-1] if len(events) == limit else None
        return EventPage(
            events=events,
            next_after=encode_cursor(last.occurred_at, last.event_id) if last else None,
        )

    async def storage_report(
        self, *, tenant: TenantContext, start: date, end: date, prices: PriceTable
    ) -> StorageReport:
        """GB-months per resource over ``[start, end)``: each measured day adds its GiB divided
        by the number of days of the billing period it falls in, so a whole billing period
        gives the average over its days times one month. Days without a measurement add
        nothing: missing data never bills a guess."""
        tenant.require(Scope.USAGE_READ)
        if end <= start:
            raise _refuse("end", "must be after start")
        rows = await self._storage.between(tenant=tenant, start=start, end=end)
        gb_months: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        days: dict[tuple[str, str], int] = defaultdict(int)
        with localcontext() as ctx:
            ctx.prec = 60
            for row in rows:
                key = (row.component, row.resource)
                gb_months[key] += Decimal(row.bytes) / GIB / _period_days(tenant, row.measured_on)
                days[key] += 1
        markup = markup_of(tenant.section("billing"))
        lines = [
            StorageCharge(
                component=component,
                resource=resource,
                days_measured=days[(component, resource)],
                gb_months=to_money(amount),
                cost=to_money(amount * prices.storage_gb_month),
                billed_amount=to_money(billed(amount * prices.storage_gb_month, markup)),
            )
            for (component, resource), amount in sorted(gb_months.items())
        ]
        return StorageReport(
            start=start,
            end=end,
            price_per_gb_month=prices.storage_gb_month,
            lines=lines,
            cost=sum((line.cost for line in lines), Decimal(0)),
            billed_amount=sum((line.billed_amount for line in lines), Decimal(0)),
        )


def _period_days(tenant: TenantContext, day: date) -> int:
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    start, end = period_bounds(tenant.billing_anchor_day, at)
    return (end - start).days


def _granularity(start: datetime, end: datetime) -> str:
    """Day buckets when the range is day-aligned, else hour buckets."""
    aligned = all(t.astimezone(UTC).time() == datetime.min.time() for t in (start, end))
    return "day" if aligned else "hour"


async def unscoped_usage_by_tenant(
    session: AsyncSession, *, start: datetime, end: datetime, limit: int = 50
) -> list[TenantUsage]:
    """Top spenders across tenants (operator role)."""
    check_range(start, end)
    if not 1 <= limit <= MAX_PAGE:
        raise _refuse("limit", f"must be 1..{MAX_PAGE}")
    rows = await repo.unscoped_usage_by_tenant(
        session, granularity=_granularity(start, end), start=start, end=end, limit=limit
    )
    return [TenantUsage(tenant_id=r.tenant_id, **_totals(r)) for r in rows]


async def unscoped_usage_totals(
    session: AsyncSession, *, start: datetime, end: datetime
) -> UsageTotals:
    """Every tenant together (operator role)."""
    check_range(start, end)
    row = await repo.unscoped_usage_totals(
        session, granularity=_granularity(start, end), start=start, end=end
    )
    return UsageTotals(**_totals(row))
