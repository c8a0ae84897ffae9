"""Tables of the metering component: the usage ledger, its idempotency keys, rollups and
storage measurements. Created by migration 0002."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deskpilot.core.models import Base, TenantOwned, tenant_fk

MONEY = Numeric(24, 12)  # USD; exact decimals, never floats


class UsageEventRow(TenantOwned, Base):
    """One billable operation. Append-only; range-partitioned by month on ``occurred_at``."""

    __tablename__ = "usage_events"
    __table_args__ = (tenant_fk(), {"postgresql_partition_by": "RANGE (occurred_at)"})

    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    component: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(64))
    model_alias: Mapped[str] = mapped_column(String(128), default="")
    provider: Mapped[str] = mapped_column(String(64), default="")
    provider_model: Mapped[str] = mapped_column(String(128), default="")
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    documents: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    billed_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    latency_ms: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    agent_run_id: Mapped[str | None] = mapped_column(String(64))
    prompt_name: Mapped[str | None] = mapped_column(String(128))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    prompt_variant: Mapped[str | None] = mapped_column(String(64))
    knowledge_base: Mapped[str | None] = mapped_column(String(128))
    reservation_id: Mapped[str | None] = mapped_column(String(32))


class UsageKeyRow(TenantOwned, Base):
    """Idempotency: one row per (tenant, request id, operation) ever recorded. Not partitioned,
    so the uniqueness holds across months."""

    __tablename__ = "usage_keys"
    __table_args__ = (tenant_fk(),)

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageRollupRow(TenantOwned, Base):
    """Sums per tenant x granularity (hour, day) x bucket x component x operation x model,
    maintained in the same transaction as the events they sum."""

    __tablename__ = "usage_rollups"
    __table_args__ = (
        tenant_fk(),
        CheckConstraint("granularity IN ('hour', 'day')", name="granularity"),
    )

    granularity: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    documents: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    billed_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    latency_ms_sum: Mapped[Decimal] = mapped_column(Numeric(20, 3), default=Decimal(0))


class StorageMeasurementRow(TenantOwned, Base):
    """Bytes (and items) a tenant stores, per component and resource, measured daily."""

    __tablename__ = "storage_measurements"
    __table_args__ = (tenant_fk(),)

    measured_on: Mapped[date] = mapped_column(Date, primary_key=True)
    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    items: Mapped[int] = mapped_column(BigInteger, default=0)
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
