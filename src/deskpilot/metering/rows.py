"""A usage event turned into the ledger row the writer stores, with the windows it counts in.

The quota windows come from the quotas component (``window_for``, ``period_bounds``), so that
the counters written in the ledger transaction are exactly the windows the quota service checks.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import FieldError, ValidationFailed
from deskpilot.metering.prices import Charge, to_money
from deskpilot.metering.schemas import CounterDelta, UsageEvent
from deskpilot.quotas import Dimension, period_bounds, window_for

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LATENCY_QUANTUM = Decimal("0.001")
RESERVATION_ID_MAX = 32

# The counters the ledger keeps (requests are counted by the quota service when granted).
DIMENSIONS = {
    "tokens_per_minute": Dimension.TOKENS_PER_MINUTE.value,
    "tokens_per_period": Dimension.TOKENS_PER_PERIOD.value,
    "spend_per_period": Dimension.SPEND_PER_PERIOD.value,
}


def new_event_id(now: datetime) -> str:
    """32 characters, time-ordered: microseconds since the epoch, then randomness."""
    micros = (now - EPOCH) // timedelta(microseconds=1)
    return f"{micros:016x}{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """Every column of ``statements.INPUT_COLUMNS``, by name."""

    event_id: str
    occurred_at: datetime
    request_id: str
    component: str
    operation: str
    model_alias: str
    provider: str
    provider_model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    documents: int
    chunks: int
    bytes: int
    provider_cost: Decimal
    billed_amount: Decimal
    latency_ms: Decimal
    cache_hit: bool
    outcome: str
    agent_run_id: str | None
    prompt_name: str | None
    prompt_version: int | None
    prompt_variant: str | None
    knowledge_base: str | None
    reservation_id: str | None
    rollup_model: str
    minute_start: datetime
    minute_end: datetime
    period_start: datetime
    period_end: datetime
    quota_tokens: int


def _check_reservation(reservation_id: str | None) -> None:
    if reservation_id is not None and (
        len(reservation_id) > RESERVATION_ID_MAX or "\x00" in reservation_id
    ):
        raise ValidationFailed(
            "invalid reservation id",
            (FieldError("reservation_id", f"at most {RESERVATION_ID_MAX} characters, no NUL"),),
        )


def ledger_row(
    event: UsageEvent,
    *,
    tenant: TenantContext,
    charge: Charge,
    reservation_id: str | None,
    now: datetime,
) -> LedgerRow:
    _check_reservation(reservation_id)
    occurred = (event.occurred_at or now).astimezone(UTC)
    anchor = tenant.billing_anchor_day
    minute_start, minute_end = window_for(
        Dimension.TOKENS_PER_MINUTE, anchor_day=anchor, at=occurred
    )
    period_start, period_end = period_bounds(anchor, occurred)
    if minute_end is None:  # pragma: no cover (a rate window always ends)
        raise ValueError("tokens_per_minute has no window end")
    return LedgerRow(
        event_id=new_event_id(now),
        occurred_at=occurred,
        request_id=event.request_id,
        component=event.component,
        operation=event.operation,
        model_alias=event.model_alias,
        provider=event.provider,
        provider_model=event.provider_model,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_tokens=event.cached_tokens,
        documents=event.documents,
        chunks=event.chunks,
        bytes=event.bytes,
        provider_cost=to_money(charge.provider_cost),
        billed_amount=to_money(charge.billed_amount),
        latency_ms=event.latency_ms.quantize(LATENCY_QUANTUM),
        cache_hit=event.cache_hit,
        outcome=event.outcome.value,
        agent_run_id=event.agent_run_id,
        prompt_name=event.prompt_name,
        prompt_version=event.prompt_version,
        prompt_variant=event.prompt_variant,
        knowledge_base=event.knowledge_base,
        reservation_id=reservation_id,
        rollup_model=event.provider_model or event.model_alias,
        minute_start=minute_start,
        minute_end=minute_end,
        period_start=period_start,
        period_end=period_end,
        quota_tokens=0 if event.cache_hit else event.input_tokens + event.output_tokens,
    )


def counter_deltas(rows: Sequence[LedgerRow]) -> list[CounterDelta]:
    """What the batch statement added to ``quota_counters`` for these new rows (same rules:
    per dimension and window, zero amounts skipped)."""
    sums: dict[tuple[str, datetime, datetime], Decimal] = defaultdict(Decimal)
    for row in rows:
        tokens = Decimal(row.quota_tokens)
        sums[(DIMENSIONS["tokens_per_minute"], row.minute_start, row.minute_end)] += tokens
        sums[(DIMENSIONS["tokens_per_period"], row.period_start, row.period_end)] += tokens
        sums[(DIMENSIONS["spend_per_period"], row.period_start, row.period_end)] += (
            row.billed_amount
        )
    return [
        CounterDelta(dimension, start, end, amount)
        for (dimension, start, end), amount in sorted(sums.items())
        if amount != 0
    ]
