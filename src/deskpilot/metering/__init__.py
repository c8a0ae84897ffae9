"""Usage metering and cost attribution: one event per billable operation, durable before the
result is returned, priced from a bundled table, billed with the tenant's markup."""

from deskpilot.core.component import Component
from deskpilot.metering.config import SECTIONS
from deskpilot.metering.schemas import Outcome, RecordedUsage, UsageEvent

COMPONENT = Component(name="metering", config_sections=SECTIONS)

__all__ = ["COMPONENT", "Outcome", "RecordedUsage", "UsageEvent"]
