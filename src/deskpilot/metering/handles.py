"""Units of work of the metering component's reports, for the Python API and HTTP routes.

Each method opens one transaction and calls the report services (which never commit).
Recording goes through the process's ``Meter`` instead: it shares transactions between callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.resources import Resources
from deskpilot.metering import reports
from deskpilot.metering.prices import PriceTable
from deskpilot.metering.reports import UsageReports
from deskpilot.metering.schemas import (
    EventPage,
    Granularity,
    GroupBy,
    StorageReport,
    TenantUsage,
    UsageSummary,
    UsageTotals,
)


class UsageHandle:
    """One tenant's usage: needs the ``usage:read`` scope."""

    def __init__(self, resources: Resources, prices: PriceTable, tenant: TenantContext) -> None:
        self._db, self._prices, self._tenant = resources.db, prices, tenant

    async def summary(
        self,
        start: datetime,
        end: datetime,
        *,
        granularity: Granularity = "day",
        group_by: Sequence[GroupBy] = ("component", "model"),
    ) -> UsageSummary:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await UsageReports(session).usage_summary(
                tenant=self._tenant,
                start=start,
                end=end,
                granularity=granularity,
                group_by=group_by,
            )

    async def events(
        self, start: datetime, end: datetime, *, limit: int = 100, after: str | None = None
    ) -> EventPage:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await UsageReports(session).list_events(
                tenant=self._tenant, start=start, end=end, limit=limit, after=after
            )

    async def storage(self, start: date, end: date) -> StorageReport:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await UsageReports(session).storage_report(
                tenant=self._tenant, start=start, end=end, prices=self._prices
            )


class MeteringAdmin:
    """Operator reports across tenants."""

    def __init__(self, resources: Resources, operator: OperatorContext) -> None:
        self._db, self.operator = resources.db, operator

    async def usage_by_tenant(
        self, start: datetime, end: datetime, *, limit: int = 50
    ) -> list[TenantUsage]:
        async with self._db.dangerously_unscoped_session() as session:
            return await reports.unscoped_usage_by_tenant(
                session, start=start, end=end, limit=limit
            )

    async def totals(self, start: datetime, end: datetime) -> UsageTotals:
        async with self._db.dangerously_unscoped_session() as session:
            return await reports.unscoped_usage_totals(session, start=start, end=end)
