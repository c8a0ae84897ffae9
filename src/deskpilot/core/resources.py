"""The long-lived resources a deployment builds once (in the app factory or the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from deskpilot.core.config import ConfigSchema
from deskpilot.core.context import TenantContext
from deskpilot.core.db import Database
from deskpilot.core.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    db: Database
    schema: ConfigSchema
    redis: Redis | None = None


class PurgeStep(Protocol):
    """Removes a tenant's entries from a store that is not a database table (caches, Redis
    keys, files). Tables are purged generically; see ``tenancy.service.TenantLifecycle``."""

    async def __call__(self, resources: Resources, *, tenant: TenantContext) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredAmount:
    """What one store holds for a tenant now (``resource`` e.g. "chunks", "vectors").
    ``quota`` names the gauge it counts toward ("storage_bytes", "cache_bytes"), if any."""

    component: str
    resource: str
    bytes: int
    items: int = 0
    quota: str | None = None


class StorageProbe(Protocol):
    """Measures a tenant's stored amounts in one component's stores. The platform runs every
    probe for every tenant at least daily, records the measurements for billing (GB-month)
    and sets the storage gauges of the quotas from them."""

    async def __call__(
        self, resources: Resources, *, tenant: TenantContext
    ) -> Sequence[StoredAmount]: ...
