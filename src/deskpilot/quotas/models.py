"""Tables of the quotas component. Created by migration 0002."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from deskpilot.core.models import Base, TenantOwned, tenant_fk


class QuotaCounterRow(TenantOwned, Base):
    """Settled usage of one dimension in one window (a minute, a day, a billing period).
    Durable: the PostgreSQL backend checks against it, and the Redis backend rebuilds from it."""

    __tablename__ = "quota_counters"
    __table_args__ = (tenant_fk(),)

    dimension: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    used: Mapped[Decimal] = mapped_column(Numeric(30, 12), default=Decimal(0))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuotaReservationRow(TenantOwned, Base):
    """An open reservation (PostgreSQL backend): amounts held until settled, released or its
    lease expires."""

    __tablename__ = "quota_reservations"
    __table_args__ = (
        tenant_fk(),
        Index("ix_quota_reservations_tenant_id_expires_at", "tenant_id", "expires_at"),
    )

    reservation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    amounts: Mapped[dict[str, Any]] = mapped_column()  # dimension -> {"window": iso, "amount": str}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
