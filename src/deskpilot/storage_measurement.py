"""The daily storage measurement: every component's storage probes, for every live tenant,
recorded for GB-month billing and applied to the storage quota gauges."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from deskpilot.core.resources import Resources, StorageProbe, StoredAmount
from deskpilot.metering import Meter, StorageMeasurement
from deskpilot.quotas import Dimension, QuotaService
from deskpilot.tenancy import TenancyAdmin, TenantStatus

log = logging.getLogger(__name__)
PAGE = 500


@dataclass(frozen=True, slots=True)
class Measurement:
    resources: Resources
    admin: TenancyAdmin
    meter: Meter
    quotas: QuotaService
    probes: Sequence[StorageProbe]


async def measure_storage(job: Measurement) -> int:
    """Measure every active or suspended tenant; returns how many tenants were measured. A
    probe that fails for one tenant is logged and does not stop the others."""
    if not job.probes:
        return 0
    measured, after = 0, None
    while True:
        page = await job.admin.list_tenants(after=after, limit=PAGE)
        for tenant in page:
            if tenant.status != TenantStatus.DELETED:
                measured += await _measure_one(job, tenant.tenant_id)
        if len(page) < PAGE:
            return measured
        after = page[-1].tenant_id


async def _measure_one(job: Measurement, tenant_id: str) -> int:
    context = await job.admin.context_for(tenant_id)
    amounts: list[StoredAmount] = []
    try:
        for probe in job.probes:
            amounts.extend(await probe(job.resources, tenant=context))
    except Exception:
        log.exception("storage probe failed", extra={"tenant_id": tenant_id})
        return 0
    today = datetime.now(UTC).date()
    await job.meter.record_storage(
        [
            StorageMeasurement(
                measured_on=today,
                component=a.component,
                resource=a.resource,
                bytes=a.bytes,
                items=a.items,
            )
            for a in amounts
        ],
        tenant=context,
    )
    gauges: dict[str, int] = defaultdict(int)
    for amount in amounts:
        if amount.quota is not None:
            gauges[amount.quota] += amount.bytes
    for quota, total in gauges.items():
        await job.quotas.set_gauge(tenant=context, dimension=Dimension(quota), value=total)
    return 1
