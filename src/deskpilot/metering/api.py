"""HTTP routes of usage reports: a tenant's own usage and quota status under /v1, the
cross-tenant report under /admin. JSON by default, CSV with ``format=csv``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.http import problem_responses
from deskpilot.deps import Operator, PlatformDep, require
from deskpilot.metering.export import TOTAL_COLUMNS, csv_text, summary_columns
from deskpilot.metering.schemas import (
    EventPage,
    Granularity,
    GroupBy,
    LedgerEvent,
    Money,
    TenantUsage,
    UsageSummary,
    UsageTotals,
)
from deskpilot.quotas import QuotaStatus, period_bounds

ERRORS = problem_responses(400, 401, 403, 404, 413, 422, 503)
tenant_usage = APIRouter(prefix="/v1", tags=["usage"], responses=ERRORS)
admin_usage = APIRouter(prefix="/admin", tags=["admin"], responses=ERRORS)

UsageReader = Annotated[TenantContext, Depends(require(Scope.USAGE_READ))]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
Start = Annotated[
    datetime | None, Query(description="Inclusive; default: the current billing period's start")
]
End = Annotated[datetime | None, Query(description="Exclusive; default: the period's end")]


class QuotaStatusOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    quota: str
    window: str
    limit: Money
    used: Money
    held: Money
    percent: Money
    state: str
    window_start: datetime
    resets_at: datetime | None


class UsageReport(BaseModel):
    """``GET /v1/usage``: the usage summary (from rollups) and the quota status now."""

    tenant_id: str
    period_start: datetime
    period_end: datetime
    usage: UsageSummary
    quotas: list[QuotaStatusOut]


class TenantsReport(BaseModel):
    """``GET /admin/usage``: tenants by billed amount (top spenders first) and totals."""

    start: datetime
    end: datetime
    tenants: list[TenantUsage]
    totals: UsageTotals


def _window(
    tenant: TenantContext, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    period_start, period_end = period_bounds(tenant.billing_anchor_day, datetime.now(UTC))
    return start or period_start, end or period_end


def _quota_out(status: QuotaStatus) -> QuotaStatusOut:
    return QuotaStatusOut(
        quota=status.dimension.value,
        window=status.window.value,
        limit=status.limit,
        used=status.used,
        held=status.held,
        percent=status.percent,
        state=status.state.value,
        window_start=status.window_start,
        resets_at=status.window_end,
    )


def csv_response(rows: Iterable[BaseModel], columns: Sequence[str], filename: str) -> Response:
    return Response(
        csv_text(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@tenant_usage.get("/usage", response_model=UsageReport)
async def own_usage(
    platform: PlatformDep,
    tenant: UsageReader,
    start: Start = None,
    end: End = None,
    granularity: Granularity = "day",
    group_by: Annotated[list[GroupBy], Query()] = ["bucket", "component", "model"],  # noqa: B006
    format: Format = "json",
) -> Any:
    """Usage by component, model and day (or hour) from the rollups, plus quota status."""
    period_start, period_end = _window(tenant, None, None)
    start, end = _window(tenant, start, end)
    handle = platform.tenant(tenant)
    summary = await handle.usage.summary(start, end, granularity=granularity, group_by=group_by)
    if format == "csv":
        columns = summary_columns(group_by)
        return csv_response(summary.rows, columns, f"usage-{tenant.tenant_id}.csv")
    return UsageReport(
        tenant_id=tenant.tenant_id,
        period_start=period_start,
        period_end=period_end,
        usage=summary,
        quotas=[_quota_out(s) for s in await handle.quota_status()],
    )


@tenant_usage.get("/usage/events", response_model=EventPage)
async def own_usage_events(
    platform: PlatformDep,
    tenant: UsageReader,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    after: Annotated[
        str | None, Query(max_length=200, description="next_after of the previous page")
    ] = None,
    format: Format = "json",
) -> Any:
    """The ledger itself (one row per billable operation), paged, for export."""
    start, end = _window(tenant, start, end)
    page = await platform.tenant(tenant).usage.events(start, end, limit=limit, after=after)
    if format == "csv":
        response = csv_response(page.events, list(LedgerEvent.model_fields), "usage-events.csv")
        if page.next_after:
            response.headers["x-next-after"] = page.next_after
        return response
    return page


@admin_usage.get("/usage", response_model=TenantsReport)
async def all_usage(
    platform: PlatformDep,
    operator: Operator,
    start: Annotated[datetime, Query(description="Inclusive")],
    end: Annotated[datetime, Query(description="Exclusive")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    format: Format = "json",
) -> Any:
    """Every tenant's totals in [start, end), top spenders first, and the grand totals."""
    admin = platform.admin(operator)
    tenants = await admin.usage.usage_by_tenant(start, end, limit=limit)
    if format == "csv":
        columns = ["tenant_id", *TOTAL_COLUMNS]
        return csv_response(tenants, columns, "usage-by-tenant.csv")
    totals = await admin.usage.totals(start, end)
    return TenantsReport(start=start, end=end, tenants=tenants, totals=totals)
