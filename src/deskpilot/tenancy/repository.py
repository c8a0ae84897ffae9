"""Queries of the tenancy component. Tenant-owned tables go through ``TenantRepository``;
the few cross-tenant reads are the ``unscoped_*`` functions at the bottom."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.repository import TenantRepository
from deskpilot.tenancy.models import (
    ApiKeyRow,
    AuditRow,
    PlatformAuditRow,
    TenantConfigRow,
    TenantRow,
    TierRow,
)


def new_entry_id() -> str:
    """Time-ordered id: microseconds since the epoch, then randomness."""
    return f"{int(datetime.now().timestamp() * 1_000_000):016x}{secrets.token_hex(8)}"


class TenantRepo(TenantRepository[TenantRow]):
    model = TenantRow

    async def get_for_update(self, *, tenant: TenantContext) -> TenantRow | None:
        stmt = self.select(tenant=tenant).with_for_update()
        row: TenantRow | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row


class KeyRepo(TenantRepository[ApiKeyRow]):
    model = ApiKeyRow

    async def list_keys(
        self, *, tenant: TenantContext, include_revoked: bool
    ) -> Sequence[ApiKeyRow]:
        stmt = self.select(tenant=tenant).order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        return await self.list(stmt)

    async def count_active(self, *, tenant: TenantContext, now: datetime) -> int:
        stmt = (
            self.select(tenant=tenant)
            .where(ApiKeyRow.revoked_at.is_(None))
            .where((ApiKeyRow.expires_at.is_(None)) | (ApiKeyRow.expires_at > now))
        )
        counted = select(func.count()).select_from(stmt.subquery())
        return int((await self.session.execute(counted)).scalar_one())


class ConfigRepo(TenantRepository[TenantConfigRow]):
    model = TenantConfigRow


class AuditRepo(TenantRepository[AuditRow]):
    model = AuditRow

    def record(
        self,
        *,
        tenant: TenantContext,
        actor: str,
        action: str,
        target: str = "",
        old: dict[str, Any] | None = None,
        new: dict[str, Any] | None = None,
    ) -> AuditRow:
        row = AuditRow(
            entry_id=new_entry_id(),
            actor=actor,
            action=action,
            target=target,
            old_value=old,
            new_value=new,
        )
        return self.add(row, tenant=tenant)

    async def recent(
        self, *, tenant: TenantContext, limit: int, before: str | None = None
    ) -> Sequence[AuditRow]:
        stmt = self.select(tenant=tenant).order_by(AuditRow.entry_id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(AuditRow.entry_id < before)
        return await self.list(stmt)


@dataclass(frozen=True, slots=True)
class TenantState:
    """A tenant with its tier layer and overrides: what a ``TenantContext`` is built from."""

    tenant: TenantRow
    tier_config: dict[str, Any]
    overrides: dict[str, Any]
    revision: int


def _state_query(tenant_id: str) -> Select[Any]:
    return (
        select(TenantRow, TierRow.config, TenantConfigRow.overrides, TenantConfigRow.revision)
        .join(TierRow, TierRow.name == TenantRow.tier)
        .outerjoin(TenantConfigRow, TenantConfigRow.tenant_id == TenantRow.tenant_id)
        .where(TenantRow.tenant_id == tenant_id)
    )


async def load_tenant_state(session: AsyncSession, *, claimed_tenant_id: str) -> TenantState | None:
    """Run in a session bound (RLS) to ``claimed_tenant_id``; see ``Database.claimed_session``."""
    row = (await session.execute(_state_query(claimed_tenant_id))).first()
    if row is None:
        return None
    tenant, tier_config, overrides, revision = row
    return TenantState(tenant, tier_config, overrides or {}, revision or 0)


async def load_credential(
    session: AsyncSession, *, claimed_tenant_id: str, key_id: str
) -> tuple[ApiKeyRow, TenantState] | None:
    """The key and its tenant's state in one round trip, under the claimed tenant's binding."""
    stmt = (
        _state_query(claimed_tenant_id)
        .add_columns(ApiKeyRow)
        .join(ApiKeyRow, ApiKeyRow.tenant_id == TenantRow.tenant_id)
        .where(ApiKeyRow.key_id == key_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    tenant, tier_config, overrides, revision, key = row
    return key, TenantState(tenant, tier_config, overrides or {}, revision or 0)


async def get_tier(session: AsyncSession, name: str) -> TierRow | None:
    """Tiers are platform-owned: readable by the application role."""
    return await session.get(TierRow, name)


async def list_tiers(session: AsyncSession) -> Sequence[TierRow]:
    return (await session.execute(select(TierRow).order_by(TierRow.name))).scalars().all()


def record_platform_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    session.add(
        PlatformAuditRow(
            entry_id=new_entry_id(),
            actor=actor,
            action=action,
            target=target,
            old_value=old,
            new_value=new,
        )
    )


async def list_platform_audit(
    session: AsyncSession, *, limit: int, before: str | None
) -> Sequence[PlatformAuditRow]:
    stmt = select(PlatformAuditRow).order_by(PlatformAuditRow.entry_id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(PlatformAuditRow.entry_id < before)
    return (await session.execute(stmt)).scalars().all()


async def unscoped_list_tenants(
    session: AsyncSession, *, status: str | None, tier: str | None, after: str | None, limit: int
) -> Sequence[TenantRow]:
    """Every tenant (operator role only): the platform-admin listing."""
    stmt = select(TenantRow).order_by(TenantRow.tenant_id).limit(limit)
    if status is not None:
        stmt = stmt.where(TenantRow.status == status)
    if tier is not None:
        stmt = stmt.where(TenantRow.tier == tier)
    if after is not None:
        stmt = stmt.where(TenantRow.tenant_id > after)
    return (await session.execute(stmt)).scalars().all()


async def unscoped_count_tenants_on_tier(session: AsyncSession, tier: str) -> int:
    stmt = select(func.count()).select_from(TenantRow).where(TenantRow.tier == tier)
    return int((await session.execute(stmt)).scalar_one())
