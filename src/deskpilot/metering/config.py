"""The ``billing`` config section: what a tenant is billed relative to what a call cost."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from deskpilot.core.component import ConfigSection


class BillingConfig(BaseModel):
    """Markup (positive) or discount (negative) applied to provider cost to get the billed
    amount, in percent. Operator-managed, per tier and per tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    markup_percent: Decimal = Field(default=Decimal(0), ge=-100, le=1000)


SECTIONS = (
    ConfigSection(
        "billing", BillingConfig, tenant_editable=False, description=BillingConfig.__doc__ or ""
    ),
)
