"""The Python API: one ``Platform`` per process, scoped handles per tenant.

    async with await Platform.open() as platform:
        ctx = await platform.authenticate("dp_acme_...")
        keys = await platform.tenant(ctx).keys.list()

Each handle method is one unit of work: it opens the transaction, calls the services (which
never commit) and commits. HTTP routes call the same handles. This module composes the
components through their public surfaces only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

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
from deskpilot.tenancy import (
    ConfigHandle,
    CredentialResolver,
    KeysHandle,
    OwnTenantHandle,
    TenancyAdmin,
    Tenant,
    new_operator_token,
)


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
        steps = [step for c in self.components for step in c.purge_steps]
        return AdminHandle(self.resources, operator, steps)


class TenantHandle:
    """Everything one tenant may do to its own data, one attribute per component."""

    def __init__(
        self, resources: Resources, tenant: TenantContext, *, as_operator: bool = False
    ) -> None:
        self.context = tenant
        self._own = OwnTenantHandle(resources, tenant)
        self.keys = KeysHandle(resources, tenant)
        self.config = ConfigHandle(resources, tenant, as_operator=as_operator)

    async def get(self) -> Tenant:
        return await self._own.get()


class AdminHandle(TenancyAdmin):
    """Platform-operator actions, plus acting on one tenant with every component's handle."""

    async def on_tenant(self, tenant_id: str) -> TenantHandle:
        return TenantHandle(self._resources, await self.context_for(tenant_id), as_operator=True)
