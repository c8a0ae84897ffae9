"""What a component hands the Meter, and what reports return."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    OK = "ok"
    ERROR = "error"  # the work failed after consuming paid resources (still billed)
    CANCELLED = "cancelled"  # e.g. a stream the client dropped: billed for what was consumed


class UsageEvent(BaseModel):
    """One billable operation, as a component reports it. The tenant comes from the
    ``TenantContext`` the Meter is called with, never from here. Costs are computed by the
    Meter from the price table unless ``provider_cost`` is given (e.g. a provider-reported
    cost); ``billed_amount`` always comes from the tenant's billing configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    component: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    operation: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.:-]*$")
    request_id: str = Field(min_length=1, max_length=128)
    model_alias: str = Field(default="", max_length=128)
    provider: str = Field(default="", max_length=64)
    provider_model: str = Field(default="", max_length=128)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    documents: int = Field(default=0, ge=0)
    chunks: int = Field(default=0, ge=0)
    bytes: int = Field(default=0, ge=0)
    provider_cost: Decimal | None = Field(default=None, ge=0)
    latency_ms: Decimal = Field(default=Decimal(0), ge=0)
    cache_hit: bool = False
    outcome: Outcome = Outcome.OK
    agent_run_id: str | None = Field(default=None, max_length=64)
    prompt_name: str | None = Field(default=None, max_length=128)
    prompt_version: int | None = Field(default=None, ge=0)
    prompt_variant: str | None = Field(default=None, max_length=64)
    knowledge_base: str | None = Field(default=None, max_length=128)
    occurred_at: datetime | None = Field(default=None, description="Defaults to now (UTC).")


class RecordedUsage(BaseModel):
    """The durable record of an event (returned once it is committed)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    event_id: str
    tenant_id: str
    request_id: str
    operation: str
    occurred_at: datetime
    provider_cost: Decimal
    billed_amount: Decimal
    duplicate: bool = Field(
        default=False, description="True when this (request id, operation) was already recorded."
    )
