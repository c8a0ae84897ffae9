"""The ``quotas`` config section: a limit per dimension (None = unlimited) and the soft
threshold. Operator-managed: a tenant cannot raise its own limits."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from deskpilot.core.component import ConfigSection


class QuotasConfig(BaseModel):
    """Limits per tenant. Rate limits are per minute; period limits follow the billing period
    (from the tenant's anchor day, UTC); gauges cap what a tenant holds at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=0)
    tokens_per_minute: int | None = Field(default=None, ge=0)
    tokens_per_period: int | None = Field(default=None, ge=0)
    spend_per_period: Decimal | None = Field(
        default=None, ge=0, description="Billed amount (USD) per billing period."
    )
    documents: int | None = Field(default=None, ge=0)
    storage_bytes: int | None = Field(default=None, ge=0)
    cache_bytes: int | None = Field(default=None, ge=0)
    agent_runs_per_day: int | None = Field(default=None, ge=0)
    concurrent_agent_runs: int | None = Field(default=None, ge=0)
    soft_threshold: Decimal = Field(
        default=Decimal("0.8"),
        gt=0,
        le=1,
        description="Share of a limit past which responses carry a warning and an event.",
    )


SECTIONS = (
    ConfigSection(
        "quotas", QuotasConfig, tenant_editable=False, description=QuotasConfig.__doc__ or ""
    ),
)
