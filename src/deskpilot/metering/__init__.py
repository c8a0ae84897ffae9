"""Usage metering and cost attribution: one event per billable operation, durable before the
result is returned, priced from a bundled table, billed with the tenant's markup.

Other components import from here only: the Meter, the price table, the report handles, the
partition maintenance job and the DTOs.
"""

from deskpilot.core.component import Component
from deskpilot.metering.config import SECTIONS
from deskpilot.metering.export import TOTAL_COLUMNS, csv_text, summary_columns
from deskpilot.metering.handles import MeteringAdmin, UsageHandle
from deskpilot.metering.ledger import DurableHook, MeterClosed, WriterStats
from deskpilot.metering.partitions import ensure_partitions, partition_name
from deskpilot.metering.prices import ModelPrice, PriceTable, markup_of, split_cached, to_money
from deskpilot.metering.schemas import (
    CounterDelta,
    EventPage,
    LedgerEvent,
    Outcome,
    RecordedUsage,
    StorageCharge,
    StorageMeasurement,
    StorageReport,
    TenantUsage,
    UsageEvent,
    UsageSummary,
    UsageSummaryRow,
    UsageTotals,
)
from deskpilot.metering.service import Meter

COMPONENT = Component(name="metering", config_sections=SECTIONS)

__all__ = [
    "COMPONENT",
    "TOTAL_COLUMNS",
    "CounterDelta",
    "DurableHook",
    "EventPage",
    "LedgerEvent",
    "Meter",
    "MeterClosed",
    "MeteringAdmin",
    "ModelPrice",
    "Outcome",
    "PriceTable",
    "RecordedUsage",
    "StorageCharge",
    "StorageMeasurement",
    "StorageReport",
    "TenantUsage",
    "UsageEvent",
    "UsageHandle",
    "UsageSummary",
    "UsageSummaryRow",
    "UsageTotals",
    "WriterStats",
    "csv_text",
    "ensure_partitions",
    "markup_of",
    "partition_name",
    "split_cached",
    "summary_columns",
    "to_money",
]
