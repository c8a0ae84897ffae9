"""Queries of the gateway's stored configuration. The tenant-owned provider keys go through
``TenantRepository``; the ``unscoped_*`` functions (operator role) serve key rotation only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.repository import TenantRepository
from deskpilot.gateway.store.models import DeploymentRow, ProviderKeyRow

_FINGERPRINT = text(
    "SELECT md5(coalesce(string_agg(name || ':' || updated_at::text, ',' ORDER BY name), '')) "
    "FROM gateway_deployments"
)


async def list_deployments(session: AsyncSession) -> Sequence[DeploymentRow]:
    stmt = select(DeploymentRow).order_by(
        DeploymentRow.alias, DeploymentRow.created_at, DeploymentRow.name
    )
    return (await session.execute(stmt)).scalars().all()


async def get_deployment(
    session: AsyncSession, name: str, *, for_update: bool = False
) -> DeploymentRow | None:
    stmt = select(DeploymentRow).where(DeploymentRow.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    row: DeploymentRow | None = (await session.execute(stmt)).scalar_one_or_none()
    return row


async def deployment_names(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(DeploymentRow.name))).scalars())


async def stored_families(session: AsyncSession) -> set[str]:
    """The key family of every stored deployment (its key_family, else its provider)."""
    family = func.coalesce(DeploymentRow.key_family, DeploymentRow.provider)
    return set((await session.execute(select(family).distinct())).scalars())


async def deployments_fingerprint(session: AsyncSession) -> str:
    """Changes whenever a stored deployment is added, changed or removed."""
    return str((await session.execute(_FINGERPRINT)).scalar_one())


async def deployments_for_update(session: AsyncSession) -> Sequence[DeploymentRow]:
    stmt = select(DeploymentRow).order_by(DeploymentRow.name).with_for_update()
    return (await session.execute(stmt)).scalars().all()


class ProviderKeyRepo(TenantRepository[ProviderKeyRow]):
    model = ProviderKeyRow

    async def list_keys(self, *, tenant: TenantContext) -> Sequence[ProviderKeyRow]:
        return await self.list(self.select(tenant=tenant).order_by(ProviderKeyRow.family))

    async def get_for_update(self, family: str, *, tenant: TenantContext) -> ProviderKeyRow | None:
        stmt = self.select(tenant=tenant).where(ProviderKeyRow.family == family).with_for_update()
        row: ProviderKeyRow | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row


async def unscoped_provider_keys_for_update(session: AsyncSession) -> Sequence[ProviderKeyRow]:
    """Every tenant's provider keys (operator role): re-encryption under a new master key."""
    stmt = (
        select(ProviderKeyRow)
        .order_by(ProviderKeyRow.tenant_id, ProviderKeyRow.family)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()
