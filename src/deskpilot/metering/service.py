"""The Meter: prices a usage event, bills it with the tenant's markup, and returns once the
ledger row is durable (group commit: see ``ledger.py``).

One Meter per process, built by the app factory (or CLI) and closed before the database::

    meter = Meter(resources, PriceTable.load(overrides))
    recorded = await meter.record(event, tenant=ctx)   # durable when it returns
    ...
    await meter.close()                                # flushes what is queued

Recording is idempotent by (tenant, request id, operation): a retry returns the first event's
``RecordedUsage`` with ``duplicate=True`` and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import TenantScopeError
from deskpilot.core.resources import Resources
from deskpilot.metering.batch import Pending
from deskpilot.metering.ledger import DurableHook, LedgerWriter, WriterStats
from deskpilot.metering.prices import PriceTable, markup_of
from deskpilot.metering.repository import StorageRepo
from deskpilot.metering.rows import ledger_row
from deskpilot.metering.schemas import RecordedUsage, StorageMeasurement, UsageEvent
from deskpilot.quotas import Reservation

log = logging.getLogger(__name__)

_WARNED_LIMIT = 1000


class Meter:
    def __init__(self, resources: Resources, prices: PriceTable, *, max_batch: int = 1000) -> None:
        self._db = resources.db
        self.prices = prices
        self._hooks: list[DurableHook] = []
        self._writer = LedgerWriter(resources.db, max_batch=max_batch, hooks=self._hooks)
        self._warned: set[tuple[str, str]] = set()

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    def on_durable(self, hook: DurableHook) -> None:
        """Call ``hook(tenant_id, deltas, settled)`` after each commit that moved a tenant's
        quota counters or settled its reservations (the quota service mirrors the counters into
        Redis and drops the holds, in one call). Hooks run on the writer task, after the
        callers were answered: keep them short; their errors are logged only."""
        self._hooks.append(hook)

    async def record(
        self,
        event: UsageEvent,
        *,
        tenant: TenantContext,
        reservation_id: str | None = None,
        settles: Reservation | None = None,
    ) -> RecordedUsage:
        """Price and bill ``event`` for ``tenant``; return once it is committed. ``settles``:
        the work's last event; its reservation's holds go with the commit (the ``on_durable``
        hooks get it with the counter deltas: one step in Redis, never counted twice)."""
        if not isinstance(tenant, TenantContext):
            raise TenantScopeError("usage recorded without a tenant")
        if settles is not None:
            if settles.tenant_id != tenant.tenant_id:
                raise TenantScopeError(
                    f"reservation of {settles.tenant_id!r} settled for {tenant.tenant_id!r}"
                )
            reservation_id = settles.reservation_id
        charge = self.prices.charge(event, markup_percent=markup_of(tenant.section("billing")))
        if charge.unpriced:
            self._warn_unpriced(event)
        row = ledger_row(
            event,
            tenant=tenant,
            charge=charge,
            reservation_id=reservation_id,
            now=datetime.now(UTC),
        )
        future: asyncio.Future[RecordedUsage] = asyncio.get_running_loop().create_future()
        self._writer.submit(Pending(tenant, row, charge.unpriced, future, settles))
        return await future

    async def record_storage(
        self, measurements: Sequence[StorageMeasurement], *, tenant: TenantContext
    ) -> int:
        """Upsert daily storage measurements (one per day, component and resource; a later
        measurement of the same day replaces the earlier). Returns the rows written."""
        if not measurements:
            return 0
        async with self._db.tenant_session(tenant=tenant) as session:
            return await StorageRepo(session).upsert(
                measurements, tenant=tenant, measured_at=datetime.now(UTC)
            )

    async def idle(self) -> None:
        """Wait until what was recorded so far is durable and its post-commit hooks ran."""
        await self._writer.idle()

    async def close(self) -> None:
        """Flush what is queued and stop the writer; later records raise ``MeterClosed``."""
        await self._writer.close()

    def _warn_unpriced(self, event: UsageEvent) -> None:
        key = (event.provider, event.provider_model)
        if key in self._warned or len(self._warned) >= _WARNED_LIMIT:
            return
        self._warned.add(key)
        log.warning(
            "no price for model: recorded at cost 0; add it to the price overrides",
            extra={"provider": event.provider, "provider_model": event.provider_model},
        )
