"""The gateway's stored configuration as the platform exposes it.

``GatewayStore`` is built once per process by the ``Platform`` (``platform.gateway_store``) and
is the runtime's integration surface::

    rows = await store.load_catalogue_rows()          # list[CatalogueRow(alias, deployment, price)]
    store.on_deployments_change(callback)             # every process, after any change
    keys = await store.own_keys(tenant=ctx)           # Mapping[family, SecretStr], warm: µs
    store.use_file_deployments(lambda: file_config)   # GatewayConfig | None: listed, names reserved
    store.use_known_families(catalogue.families)      # families a tenant may store a key for

The handles are units of work (one transaction each) for the Python API and the HTTP routes:
``platform.admin(op).deployments`` and ``platform.tenant(ctx).provider_keys``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core import validation
from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.core.invalidation import InvalidationBus
from deskpilot.core.resources import Resources
from deskpilot.core.secrets import SecretBox
from deskpilot.gateway.config import GatewayConfig, load_gateway_config_file
from deskpilot.gateway.config_litellm import UNSET_BASE
from deskpilot.gateway.store import repository as repo
from deskpilot.gateway.store.cache import OwnKeysCache
from deskpilot.gateway.store.catalogue import CatalogueRow, load_catalogue_rows
from deskpilot.gateway.store.deployments import DeploymentService
from deskpilot.gateway.store.provider_keys import ProviderKeysService
from deskpilot.gateway.store.schemas import (
    DeploymentCreate,
    DeploymentUpdate,
    DeploymentView,
    ProviderKeyView,
)
from deskpilot.gateway.store.watch import ChangeCallback, DeploymentWatch

Body = TypeVar("Body", bound=BaseModel)
FileConfig = Callable[[], GatewayConfig | None]
KnownFamilies = Callable[[], Collection[str]]


def file_rows(config: GatewayConfig | None) -> list[CatalogueRow]:
    """The deployments file's deployments in the shape ``load_catalogue_rows`` returns."""
    if config is None:
        return []
    prices = {price.deployment: price for price in config.prices}
    return [
        CatalogueRow(alias, deployment, prices.get(deployment.name))
        for alias, deployments in config.deployments.items()
        for deployment in deployments
    ]


class _UnsetEnvironment(Mapping[str, str]):
    """Every ``os.environ/NAME`` of a deployments file read as the loader's own stand-in for an
    unset variable, so a file's key families can be read where its variables are not set."""

    def __getitem__(self, key: str) -> str:
        return UNSET_BASE

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def families_in_file(path: Path) -> frozenset[str]:
    """The key families a deployments file's deployments use (for tools that do not run the
    gateway, such as the CLI). The file must be valid; its variables need not be set."""
    config = load_gateway_config_file(path, environ=_UnsetEnvironment()).config
    return frozenset(d.family for ds in config.deployments.values() for d in ds)


class GatewayStore:
    """Per process: the own-keys cache, the deployments watch, and what the runtime tells the
    store about the deployments file and the catalogue."""

    def __init__(self, resources: Resources, secrets: SecretBox, bus: InvalidationBus) -> None:
        self._resources = resources
        self.secrets = secrets
        settings = resources.settings
        self._own_keys = OwnKeysCache(
            resources.db,
            secrets,
            bus,
            fresh_seconds=settings.auth_cache_seconds,
            stale_seconds=settings.auth_stale_seconds,
        )
        self._watch = DeploymentWatch(resources.db, bus)
        self._file: FileConfig = lambda: None
        self._families: KnownFamilies = lambda: ()

    async def start(self) -> None:
        await self._watch.start()

    async def stop(self) -> None:
        await self._watch.stop()

    async def own_keys(self, *, tenant: TenantContext) -> Mapping[str, SecretStr]:
        return await self._own_keys.own_keys(tenant=tenant)

    async def load_catalogue_rows(self) -> list[CatalogueRow]:
        return await load_catalogue_rows(self._resources.db, secrets=self.secrets)

    def on_deployments_change(self, callback: ChangeCallback) -> None:
        self._watch.on_change(callback)

    def use_file_deployments(self, config: FileConfig) -> None:
        """Where the runtime keeps the deployments file's ``GatewayConfig`` (None: no file)."""
        self._file = config

    def use_known_families(self, families: KnownFamilies) -> None:
        """Families in use beyond the stored and file deployments' (e.g. the catalogue's)."""
        self._families = families

    def file_rows(self) -> list[CatalogueRow]:
        return file_rows(self._file())

    async def known_families(self, session: AsyncSession) -> frozenset[str]:
        stored = await repo.stored_families(session)
        in_file = {row.deployment.family for row in self.file_rows()}
        return frozenset(stored | in_file | set(self._families()))


class ProviderKeysHandle:
    """One tenant's own provider keys: ``tenant:admin``."""

    def __init__(self, resources: Resources, tenant: TenantContext, store: GatewayStore) -> None:
        self._db, self._tenant, self._store = resources.db, tenant, store

    async def set(self, family: str, api_key: str | SecretStr) -> ProviderKeyView:
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        async with self._db.tenant_session(tenant=self._tenant) as session:
            known = await self._store.known_families(session)
            return await ProviderKeysService(session, self._store.secrets).set(
                family, secret, tenant=self._tenant, known_families=known
            )

    async def list(self) -> list[ProviderKeyView]:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            return await ProviderKeysService(session, self._store.secrets).list(tenant=self._tenant)

    async def delete(self, family: str) -> None:
        async with self._db.tenant_session(tenant=self._tenant) as session:
            await ProviderKeysService(session, self._store.secrets).delete(
                family, tenant=self._tenant
            )


class DeploymentsAdmin:
    """Operator CRUD of stored deployments; file deployments are listed read-only."""

    def __init__(
        self, resources: Resources, operator: OperatorContext, store: GatewayStore
    ) -> None:
        self._db, self.operator, self._store = resources.db, operator, store

    async def list(self) -> list[DeploymentView]:
        async with self._db.dangerously_unscoped_session() as session:
            return await self._service(session).list(file=self._store.file_rows())

    async def get(self, name: str) -> DeploymentView:
        async with self._db.dangerously_unscoped_session() as session:
            return await self._service(session).get(name, file=self._store.file_rows())

    async def create(self, body: DeploymentCreate | Mapping[str, Any]) -> DeploymentView:
        """Our shape or a LiteLLM ``model_list`` entry (see ``DeploymentCreate``)."""
        parsed = validation.parsed(DeploymentCreate, body, detail="deployment refused")
        async with self._db.dangerously_unscoped_session() as session:
            return await self._service(session).create(
                parsed, operator=self.operator, file=self._store.file_rows()
            )

    async def update(self, name: str, body: DeploymentUpdate | Mapping[str, Any]) -> DeploymentView:
        parsed = validation.parsed(DeploymentUpdate, body, detail="deployment refused")
        async with self._db.dangerously_unscoped_session() as session:
            return await self._service(session).update(
                name, parsed, operator=self.operator, file=self._store.file_rows()
            )

    async def delete(self, name: str) -> None:
        async with self._db.dangerously_unscoped_session() as session:
            await self._service(session).delete(
                name, operator=self.operator, file=self._store.file_rows()
            )

    def _service(self, session: AsyncSession) -> DeploymentService:
        return DeploymentService(session, self._store.secrets)
