"""The long-lived resources a deployment builds once (in the app factory or the CLI)."""

from __future__ import annotations

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
