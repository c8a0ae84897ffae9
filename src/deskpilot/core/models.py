"""Declarative base and the marker every tenant-owned table carries.

A tenant-owned table declares ``tenant_id`` first in its primary key (ready to be distributed by
``tenant_id`` on Citus). ``tests/integration/test_schema_rules.py`` checks every table in the
database against these rules, so a new component cannot add a table that skips them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, ForeignKeyConstraint, MetaData, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB}


class TenantOwned:
    """Mixin: the row belongs to one tenant. Repositories refuse to query it without one."""

    __tenant_owned__: ClassVar[bool] = True

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True, sort_order=-100)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, onupdate=utcnow
    )


def tenant_fk() -> ForeignKeyConstraint:
    """The reference every tenant-owned table (but ``tenants``) makes to its tenant."""
    return ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"])


def is_tenant_owned(model: type[Any]) -> bool:
    return bool(getattr(model, "__tenant_owned__", False))
