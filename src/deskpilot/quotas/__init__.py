"""Quotas: limits per tenant (rates, billing-period budgets, stored amounts, concurrency),
reserved before work starts and settled after, atomic across processes."""

from deskpilot.core.component import Component
from deskpilot.quotas.config import SECTIONS, QuotasConfig
from deskpilot.quotas.plan import Delta, DurableDelta, Increments, QuotaBackend
from deskpilot.quotas.postgres import PostgresQuotaBackend
from deskpilot.quotas.redis_backend import RedisQuotaBackend
from deskpilot.quotas.schemas import (
    Dimension,
    Hold,
    QuotaExceeded,
    QuotaState,
    QuotaStatus,
    QuotaWarning,
    Reservation,
    ReservationLost,
    Window,
    plain,
)
from deskpilot.quotas.service import QuotaService, quota_backend
from deskpilot.quotas.windows import GAUGE_WINDOW_START, period_bounds, window_for

COMPONENT = Component(name="quotas", config_sections=SECTIONS)

__all__ = [
    "COMPONENT",
    "GAUGE_WINDOW_START",
    "Delta",
    "Dimension",
    "DurableDelta",
    "Hold",
    "Increments",
    "PostgresQuotaBackend",
    "QuotaBackend",
    "QuotaExceeded",
    "QuotaService",
    "QuotaState",
    "QuotaStatus",
    "QuotaWarning",
    "QuotasConfig",
    "RedisQuotaBackend",
    "Reservation",
    "ReservationLost",
    "Window",
    "period_bounds",
    "plain",
    "quota_backend",
    "window_for",
]
