"""Quotas: limits per tenant (rates, billing-period budgets, stored amounts, concurrency),
reserved before work starts and settled after, atomic across processes."""

from deskpilot.core.component import Component
from deskpilot.quotas.config import SECTIONS
from deskpilot.quotas.schemas import (
    Dimension,
    Hold,
    QuotaExceeded,
    QuotaWarning,
    Reservation,
    Window,
)

COMPONENT = Component(name="quotas", config_sections=SECTIONS)

__all__ = [
    "COMPONENT",
    "Dimension",
    "Hold",
    "QuotaExceeded",
    "QuotaWarning",
    "Reservation",
    "Window",
]
