"""Metered work: reserve quota before the work starts, record its usage durably, settle after;
release the reservation if the work fails before anything billable happened.

    async with platform.metered(tenant=ctx, request_id=rid,
                                reserve={Dimension.REQUESTS_PER_MINUTE: 1,
                                         Dimension.TOKENS_PER_MINUTE: estimate}) as work:
        result = await call_provider(...)
        await work.record(UsageEvent(...), final=True)   # returns once the event is durable
    return result

Every component that spends money goes through this (or the same three calls), so a refusal
happens before any provider is called, and no result is returned before its usage is durable.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Protocol

from deskpilot.core.context import TenantContext
from deskpilot.metering import Meter, RecordedUsage, UsageEvent
from deskpilot.quotas import Dimension, QuotaService, QuotaWarning, Reservation, plain

QUOTA_WARNING_HEADER = "x-deskpilot-quota-warning"


class MeteredFactory(Protocol):
    """``platform.metered``, as the components that spend take it."""

    def __call__(
        self,
        *,
        tenant: TenantContext,
        request_id: str,
        reserve: Mapping[Dimension, Decimal | int],
        lease_seconds: float = ...,
    ) -> MeteredWork: ...


class MeteredWork:
    def __init__(
        self,
        meter: Meter,
        quotas: QuotaService,
        *,
        tenant: TenantContext,
        request_id: str,
        reserve: Mapping[Dimension, Decimal | int],
        lease_seconds: float,
    ) -> None:
        self._meter, self._quotas, self._tenant = meter, quotas, tenant
        self._request_id, self._asks, self._lease = request_id, dict(reserve), lease_seconds
        self.reservation: Reservation | None = None
        self.recorded: list[RecordedUsage] = []
        self.settled = False  # by the final record's commit

    @property
    def warnings(self) -> tuple[QuotaWarning, ...]:
        return self.reservation.warnings if self.reservation else ()

    def warning_headers(self) -> dict[str, str]:
        """``X-Deskpilot-Quota-Warning`` for a response when a soft threshold was passed:
        ``tokens_per_period=850000/1000000; spend_per_period=8.2/10``."""
        if not self.warnings:
            return {}
        value = "; ".join(
            f"{w.dimension.value}={plain(w.used)}/{plain(w.limit)}" for w in self.warnings
        )
        return {QUOTA_WARNING_HEADER: value}

    async def __aenter__(self) -> MeteredWork:
        self.reservation = await self._quotas.reserve(
            tenant=self._tenant,
            request_id=self._request_id,
            amounts=self._asks,
            lease_seconds=self._lease,
        )
        return self

    async def record(self, event: UsageEvent, *, final: bool = False) -> RecordedUsage:
        """Record one billable operation of this work (durable when this returns).

        ``final``: the work's last event. The reservation is settled with the commit (in
        Redis, in the same step that moves the usage mirrors) instead of by ``__aexit__``,
        which then has nothing left to do: no extra round trip after the answer."""
        if event.request_id != self._request_id:
            raise ValueError("the event's request_id must be the metered work's request id")
        if self.settled:
            raise RuntimeError("the work's final event is already recorded")
        reservation = self.reservation
        recorded = await self._meter.record(
            event,
            tenant=self._tenant,
            reservation_id=reservation.reservation_id if reservation else None,
            settles=reservation if final else None,
        )
        self.recorded.append(recorded)
        self.settled = final
        return recorded

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.reservation is None or self.settled:
            return
        # Usage that was recorded is durable in the ledger and its quota counters: the holds
        # can go. Work that failed before recording anything gives its holds back.
        if self.recorded:
            await self._quotas.settle(self.reservation, tenant=self._tenant)
        else:
            await self._quotas.release(self.reservation, tenant=self._tenant)
