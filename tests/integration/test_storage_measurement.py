"""The storage measurement runs every component's probes for every tenant, records the
amounts for GB-month billing and sets the storage quota gauges from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from deskpilot.components import BUILTIN
from deskpilot.core.component import Component
from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.resources import Resources, StoredAmount
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension, period_bounds
from tests.conftest import make_settings, new_tenant

MiB = 1024**2


async def chunk_probe(resources: Resources, *, tenant: TenantContext) -> Sequence[StoredAmount]:
    """A stand-in store whose size depends on the tenant (so a mix-up would show)."""
    size = (3 if tenant.tenant_id.startswith("big") else 1) * MiB
    return [
        StoredAmount("rag", "chunks", size, items=10, quota=Dimension.STORAGE_BYTES.value),
        StoredAmount("rag", "vectors", size // 2, items=10, quota=Dimension.STORAGE_BYTES.value),
    ]


async def test_probes_are_recorded_and_set_the_storage_gauge(
    home: Path, operator: OperatorContext, platform: Platform
) -> None:
    store = Component(name="teststore", storage_probes=(chunk_probe,))
    async with await Platform.open(make_settings(home), components=(*BUILTIN, store)) as probing:
        big = await new_tenant(probing, operator, "big")
        small = await new_tenant(probing, operator, "small")
        assert await probing.measure_storage() >= 2

        for tenant, size in ((big, 3 * MiB), (small, MiB)):
            status = {s.dimension: s for s in await probing.tenant(tenant.context).quota_status()}
            assert status[Dimension.STORAGE_BYTES].used == Decimal(size + size // 2)
            today = datetime.now(UTC).date()
            report = await probing.tenant(tenant.context).usage.storage(
                today, today + timedelta(days=1)
            )
            lines = {line.resource: line for line in report.lines}
            # (and the knowledge bases' own probe: nothing stored yet)
            assert set(lines) == {"chunks", "vectors", "documents"}
            assert lines["documents"].gb_months == 0
            assert lines["chunks"].days_measured == 1
            # one measured day of a billing period: GiB / days in the period (12 places)
            start, end = period_bounds(tenant.context.billing_anchor_day, datetime.now(UTC))
            days = (end - start).days
            expected = (Decimal(size) / Decimal(2**30) / days).quantize(Decimal("1e-12"))
            assert lines["chunks"].gb_months == expected
