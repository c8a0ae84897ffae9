"""What a component hands the Meter, and what reports return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

COUNT_MAX = 10**15  # far above any real count, far below BIGINT overflow in the rollups

# Exact decimals in JSON as plain strings ("0.000000000000", not "0E-12").
Money = Annotated[
    Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")
]


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"  # the work failed after consuming paid resources (still billed)
    CANCELLED = "cancelled"  # e.g. a stream the client dropped: billed for what was consumed


def _refuse_nul(data: Any) -> Any:
    """PostgreSQL text cannot hold NUL; refusing it here keeps one bad event from failing the
    group-commit batch it would have joined."""
    if isinstance(data, dict):
        for name, value in data.items():
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name} must not contain NUL characters")
    return data


class UsageEvent(BaseModel):
    """One billable operation, as a component reports it. The tenant comes from the
    ``TenantContext`` the Meter is called with, never from here. Costs are computed by the
    Meter from the price table unless ``provider_cost`` is given (e.g. a provider-reported
    cost); ``billed_amount`` always comes from the tenant's billing configuration.

    Token convention: ``input_tokens`` EXCLUDES ``cached_tokens`` (see
    ``deskpilot.metering.split_cached`` for providers that count them inside the prompt)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    component: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    operation: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.:-]*$")
    request_id: str = Field(min_length=1, max_length=128)
    model_alias: str = Field(default="", max_length=128)
    provider: str = Field(default="", max_length=64)
    provider_model: str = Field(default="", max_length=128)
    input_tokens: int = Field(default=0, ge=0, le=COUNT_MAX)
    output_tokens: int = Field(default=0, ge=0, le=COUNT_MAX)
    cached_tokens: int = Field(default=0, ge=0, le=COUNT_MAX)
    documents: int = Field(default=0, ge=0, le=COUNT_MAX)
    chunks: int = Field(default=0, ge=0, le=COUNT_MAX)
    bytes: int = Field(default=0, ge=0, le=COUNT_MAX)
    provider_cost: Decimal | None = Field(default=None, ge=0, le=10**9)
    latency_ms: Decimal = Field(default=Decimal(0), ge=0, le=10**10)
    cache_hit: bool = False
    outcome: Outcome = Outcome.OK
    agent_run_id: str | None = Field(default=None, max_length=64)
    prompt_name: str | None = Field(default=None, max_length=128)
    prompt_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    prompt_variant: str | None = Field(default=None, max_length=64)
    knowledge_base: str | None = Field(default=None, max_length=128)
    occurred_at: datetime | None = Field(default=None, description="Defaults to now (UTC).")

    _no_nul = model_validator(mode="before")(_refuse_nul)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("must carry a time zone (UTC)")
        if value is not None and not 1970 <= value.year <= 9998:
            raise ValueError("must be between the years 1970 and 9998")
        return value


class RecordedUsage(BaseModel):
    """The durable record of an event (returned once it is committed)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    event_id: str
    tenant_id: str
    request_id: str
    operation: str
    occurred_at: datetime
    provider_cost: Money
    billed_amount: Money
    duplicate: bool = Field(
        default=False, description="True when this (request id, operation) was already recorded."
    )
    unpriced: bool = Field(
        default=False,
        description="The provider model has no price in the table: recorded at cost 0.",
    )


@dataclass(frozen=True, slots=True)
class CounterDelta:
    """What one commit added to one quota counter (``quota_counters.used``); handed to the
    Meter's ``on_durable`` hooks so a mirror (Redis) can follow the durable counters."""

    dimension: str
    window_start: datetime
    window_end: datetime
    amount: Decimal


class StorageMeasurement(BaseModel):
    """Bytes (and items) one resource of a tenant held on one day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    measured_on: date
    component: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    resource: str = Field(min_length=1, max_length=64)
    bytes: int = Field(ge=0, le=COUNT_MAX * 1000)
    items: int = Field(default=0, ge=0, le=COUNT_MAX)
    note: str = Field(default="", max_length=1000)

    _no_nul = model_validator(mode="before")(_refuse_nul)


class StorageCharge(BaseModel):
    model_config = ConfigDict(frozen=True)

    component: str
    resource: str
    days_measured: int
    gb_months: Money
    cost: Money
    billed_amount: Money


class StorageReport(BaseModel):
    """Storage charges for ``[start, end)``: each measured day counts 1/(days in its billing
    period) of a month; a day without a measurement counts nothing (never guessed)."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    price_per_gb_month: Money
    lines: list[StorageCharge]
    cost: Money
    billed_amount: Money


GroupBy = Literal["bucket", "component", "operation", "model"]
Granularity = Literal["hour", "day"]


class UsageTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: int = 0
    errors: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    provider_cost: Money = Decimal(0)
    billed_amount: Money = Decimal(0)


class UsageSummaryRow(UsageTotals):
    """One group; the fields not grouped by are None."""

    bucket_start: datetime | None = None
    component: str | None = None
    operation: str | None = None
    model: str | None = None


class UsageSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime
    granularity: Granularity
    group_by: tuple[GroupBy, ...]
    rows: list[UsageSummaryRow]
    totals: UsageTotals


class TenantUsage(UsageTotals):
    """One tenant's totals in the operator's cross-tenant report."""

    tenant_id: str


class LedgerEvent(BaseModel):
    """One row of the usage ledger, as exported."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    event_id: str
    tenant_id: str
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
    provider_cost: Money
    billed_amount: Money
    latency_ms: Money
    cache_hit: bool
    outcome: str
    agent_run_id: str | None
    prompt_name: str | None
    prompt_version: int | None
    prompt_variant: str | None
    knowledge_base: str | None
    reservation_id: str | None


class EventPage(BaseModel):
    """A page of the ledger; pass ``next_after`` as ``after`` for the next one."""

    model_config = ConfigDict(frozen=True)

    events: list[LedgerEvent]
    next_after: str | None
