"""The Python API: one ``Platform`` per process, scoped handles per tenant.

    async with await Platform.open() as platform:
        ctx = await platform.authenticate("dp_acme_...")
        keys = await platform.tenant(ctx).keys.list()

Each handle method is one unit of work: it opens the transaction, calls the services (which
never commit) and commits. HTTP routes call the same handles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from deskpilot.components import BUILTIN
from deskpilot.core.component import Component
from deskpilot.core.config import ConfigSchema
from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.db import Database
from deskpilot.core.invalidation import InvalidationBus, RedisInvalidationBus
from deskpilot.core.migrate import migrate
from deskpilot.core.redis import open_redis
from deskpilot.core.resources import Resources
from deskpilot.core.settings import Settings
from deskpilot.tenancy import lifecycle
from deskpilot.tenancy.auth import CredentialResolver
from deskpilot.tenancy.keys import new_operator_token
from deskpilot.tenancy.lifecycle import PurgeReport
from deskpilot.tenancy.repository import unscoped_list_tenants
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

log = logging.getLogger(__name__)


class Platform:
    def __init__(
        self,
        resources: Resources,
        bus: InvalidationBus,
        components: Sequence[Component],
    ) -> None:
        self.resources = resources
        self.components = tuple(components)
        self._bus = bus
        settings = resources.settings
        self.resolver = CredentialResolver(
            resources.db,
            resources.schema,
            bus,
            fresh_seconds=settings.auth_cache_seconds,
            stale_seconds=settings.auth_stale_seconds,
        )
        resources.db.on_commit(bus.publish)
        self.operator_token = operator_token(settings)

    @classmethod
    async def open(
        cls,
        settings: Settings | None = None,
        *,
        run_migrations: bool = True,
        components: Sequence[Component] = BUILTIN,
    ) -> Platform:
        settings = settings or Settings()
        schema = ConfigSchema([s for c in components for s in c.config_sections])
        db = await Database.open(settings)
        redis = None
        try:
            if run_migrations:
                await migrate(db)
            redis = await open_redis(settings)
            bus = InvalidationBus() if redis is None else RedisInvalidationBus(redis)
            await bus.start()
        except BaseException:
            if redis is not None:
                await redis.aclose()
            await db.close()
            raise
        return cls(Resources(settings, db, schema, redis), bus, components)

    async def close(self) -> None:
        await self._bus.stop()
        if self.resources.redis is not None:
            await self.resources.redis.aclose()
        await self.resources.db.close()

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def authenticate(self, api_key: str, *, client_ip: str | None = None) -> TenantContext:
        return await self.resolver.resolve(api_key, client_ip=client_ip)

    def tenant(self, tenant: TenantContext) -> TenantHandle:
        return TenantHandle(self.resources, tenant)

    def admin(self, operator: OperatorContext) -> AdminHandle:
        return AdminHandle(self, operator)


def operator_token(settings: Settings) -> str:
    """``DESKPILOT_ADMIN_TOKEN``, or one generated once into ``DESKPILOT_HOME/admin-token``."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.admin_token_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_operator_token() + "\n")
    return path.read_text().strip()


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
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await ConfigService(session, self._schema).patch(
                patch, tenant=self._tenant, as_operator=self._as_operator
            )

    async def audit(self, *, limit: int = 100, before: str | None = None) -> list[AuditEntry]:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await ConfigService(session, self._schema).audit(
                tenant=self._tenant, limit=limit, before=before
            )


class TenantHandle:
    """Everything one tenant may do to its own data."""

    def __init__(
        self, resources: Resources, tenant: TenantContext, *, as_operator: bool = False
    ) -> None:
        self.context = tenant
        self._db = resources.db
        self.keys = KeysHandle(resources, tenant)
        self.config = ConfigHandle(resources, tenant, as_operator=as_operator)

    async def get(self) -> Tenant:
        async with self._db.tenant_session(tenant=self.context) as session:
            return await TenantService(session).get(tenant=self.context)


class AdminHandle:
    """Platform-operator actions: tenant lifecycle, tiers, and acting on one tenant."""

    def __init__(self, platform: Platform, operator: OperatorContext) -> None:
        self._platform = platform
        self._resources = platform.resources
        self._db = platform.resources.db
        self.operator = operator

    async def on_tenant(self, tenant_id: str) -> TenantHandle:
        context = await lifecycle.context_for(self._resources, tenant_id, operator=self.operator)
        return TenantHandle(self._resources, context, as_operator=True)

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
        async with self._db.dangerously_unscoped_session() as session:
            rows = await unscoped_list_tenants(
                session,
                status=status.value if status else None,
                tier=tier,
                after=after,
                limit=limit,
            )
            return [Tenant.model_validate(r) for r in rows]

    async def get_tenant(self, tenant_id: str) -> Tenant:
        return await (await self.on_tenant(tenant_id)).get()

    async def update_tenant(self, tenant_id: str, body: TenantUpdate) -> Tenant:
        handle = await self.on_tenant(tenant_id)
        async with self._db.tenant_session(tenant=handle.context) as session:
            return await TenantService(session).update(body, tenant=handle.context)

    async def set_status(
        self, tenant_id: str, status: TenantStatus, *, reason: str | None = None
    ) -> Tenant:
        handle = await self.on_tenant(tenant_id)
        async with self._db.tenant_session(tenant=handle.context) as session:
            return await TenantService(session).set_status(
                status, tenant=handle.context, reason=reason
            )

    async def delete_tenant(self, tenant_id: str) -> PurgeReport:
        steps = [s for c in self._platform.components for s in c.purge_steps]
        report = await lifecycle.delete_tenant(
            self._resources, tenant_id, operator=self.operator, purge_steps=steps
        )
        log.info("tenant deleted", extra={"tenant_id": tenant_id, "rows": report.rows_deleted})
        return report

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

    async def platform_audit(
        self, *, limit: int = 100, before: str | None = None
    ) -> list[AuditEntry]:
        """Operator changes that belong to no tenant (tiers), newest first."""
        async with self._db.dangerously_unscoped_session() as session:
            return await TierService(session, self._resources.schema).audit(
                limit=limit, before=before
            )

    async def delete_tier(self, name: str) -> None:
        async with self._db.dangerously_unscoped_session() as session:
            await TierService(session, self._resources.schema).delete(name, operator=self.operator)
