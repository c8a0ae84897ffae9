"""Units of work of the tenancy component, for the Python API and the HTTP routes.

Each method opens one transaction, calls the services (which never commit) and commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.resources import PurgeStep, Resources
from deskpilot.tenancy import lifecycle
from deskpilot.tenancy.lifecycle import PurgeReport
from deskpilot.tenancy.schemas import (
    ApiKey,
    AuditEntry,
    ConfigView,
    CreatedApiKey,
    KeyCreate,
    Tenant,
    TenantCreate,
    TenantStatus,
    TenantUpdate,
    Tier,
    TierCreate,
    TierUpdate,
)
from deskpilot.tenancy.service import ConfigService, KeysService, TenantService, TierService


class KeysHandle:
    def __init__(self, resources: Resources, tenant: TenantContext) -> None:
        self._db, self._tenant = resources.db, tenant

    async def create(self, body: KeyCreate) -> CreatedApiKey:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await KeysService(session).create(body, tenant=self._tenant)

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await KeysService(session).list(
                tenant=self._tenant, include_revoked=include_revoked
            )

    async def get(self, key_id: str) -> ApiKey:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await KeysService(session).get(key_id, tenant=self._tenant)

    async def revoke(self, key_id: str) -> ApiKey:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await KeysService(session).revoke(key_id, tenant=self._tenant)


class ConfigHandle:
    def __init__(self, resources: Resources, tenant: TenantContext, *, as_operator: bool) -> None:
        self._db, self._schema, self._tenant = resources.db, resources.schema, tenant
        self._as_operator = as_operator

    async def view(self) -> ConfigView:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await ConfigService(session, self._schema).view(tenant=self._tenant)

    async def patch(self, patch: Mapping[str, Any]) -> ConfigView:
        """JSON merge patch onto the tenant's overrides; a tenant may only change the
        tenant-editable sections, an operator any."""
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await ConfigService(session, self._schema).patch(
                patch, tenant=self._tenant, as_operator=self._as_operator
            )

    async def audit(self, *, limit: int = 100, before: str | None = None) -> list[AuditEntry]:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await ConfigService(session, self._schema).audit(
                tenant=self._tenant, limit=limit, before=before
            )


class OwnTenantHandle:
    def __init__(self, resources: Resources, tenant: TenantContext) -> None:
        self._db, self._tenant = resources.db, tenant

    async def get(self) -> Tenant:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await TenantService(session).get(tenant=self._tenant)


class TenancyAdmin:
    """Operator actions of the tenancy component: tenant lifecycle and tiers."""

    def __init__(
        self, resources: Resources, operator: OperatorContext, purge_steps: Sequence[PurgeStep]
    ) -> None:
        self._resources = resources
        self._db = resources.db
        self._purge_steps = tuple(purge_steps)
        self.operator = operator

    async def context_for(self, tenant_id: str) -> TenantContext:
        return await lifecycle.context_for(self._resources, tenant_id, operator=self.operator)

    async def create_tenant(self, body: TenantCreate) -> Tenant:
        return await lifecycle.create_tenant(self._resources, body, operator=self.operator)

    async def list_tenants(
        self,
        *,
        status: TenantStatus | None = None,
        tier: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Tenant]:
        return await lifecycle.list_tenants(
            self._resources, status=status, tier=tier, after=after, limit=limit
        )

    async def get_tenant(self, tenant_id: str) -> Tenant:
        context = await self.context_for(tenant_id)
        async with self._db.tenant_session(tenant=context) as session:
            return await TenantService(session).get(tenant=context)

    async def update_tenant(self, tenant_id: str, body: TenantUpdate) -> Tenant:
        context = await self.context_for(tenant_id)
        async with self._db.tenant_session(tenant=context) as session:
            return await TenantService(session).update(body, tenant=context)

    async def set_status(
        self, tenant_id: str, status: TenantStatus, *, reason: str | None = None
    ) -> Tenant:
        context = await self.context_for(tenant_id)
        async with self._db.tenant_session(tenant=context) as session:
            return await TenantService(session).set_status(status, tenant=context, reason=reason)

    async def delete_tenant(self, tenant_id: str) -> PurgeReport:
        return await lifecycle.delete_tenant(
            self._resources, tenant_id, operator=self.operator, purge_steps=self._purge_steps
        )

    async def list_tiers(self) -> list[Tier]:
        async with self._db.dangerously_unscoped_session() as session:
            return await TierService(session, self._resources.schema).list_tiers()

    async def get_tier(self, name: str) -> Tier:
        async with self._db.dangerously_unscoped_session() as session:
            return await TierService(session, self._resources.schema).get(name)

    async def create_tier(self, body: TierCreate) -> Tier:
        async with self._db.dangerously_unscoped_session() as session:
            return await TierService(session, self._resources.schema).create(
                body, operator=self.operator
            )

    async def update_tier(self, name: str, body: TierUpdate) -> Tier:
        async with self._db.dangerously_unscoped_session() as session:
            return await TierService(session, self._resources.schema).update(
                name, body, operator=self.operator
            )

    async def delete_tier(self, name: str) -> None:
        async with self._db.dangerously_unscoped_session() as session:
            await TierService(session, self._resources.schema).delete(name, operator=self.operator)

    async def platform_audit(
        self, *, limit: int = 100, before: str | None = None
    ) -> list[AuditEntry]:
        """Operator changes that belong to no tenant (tiers), newest first."""
        async with self._db.dangerously_unscoped_session() as session:
            return await TierService(session, self._resources.schema).audit(
                limit=limit, before=before
            )
