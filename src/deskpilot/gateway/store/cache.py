"""Tenants' own provider keys for the gateway's hot path: decrypted once, then served from
memory.

``own_keys(tenant=ctx)`` runs on every gateway request. Warm, it is a dictionary lookup and a
clock read; a tenant whose ``gateway.byo_keys`` is ``off`` never touches the database at all.
On a miss the tenant's keys are read (under its own RLS binding) and decrypted together, and
concurrent misses for one tenant share that one load.

Freshness follows the credential cache (``tenancy.auth``): a change to a tenant's keys marks
the tenant changed, and after commit every process drops its entry (Redis pub/sub). Entries
live ``fresh_seconds`` while that notice path is live and at most one second when it is not.
While the database is unreachable, an entry younger than ``stale_seconds`` keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from deskpilot.core.context import TenantContext
from deskpilot.core.db import Database
from deskpilot.core.errors import Unavailable
from deskpilot.core.invalidation import ALL_TENANTS, InvalidationBus
from deskpilot.core.secrets import SecretBox
from deskpilot.gateway.routing import SECTION
from deskpilot.gateway.store.provider_keys import ProviderKeysService

log = logging.getLogger(__name__)
UNBOUND_TTL = 1.0
NO_KEYS: Mapping[str, SecretStr] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _Entry:
    fetched: float
    keys: Mapping[str, SecretStr]


class OwnKeysCache:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        bus: InvalidationBus,
        *,
        fresh_seconds: float,
        stale_seconds: float,
        max_entries: int = 10_000,
    ) -> None:
        self._db = db
        self._box = box
        self._bus = bus
        self._fresh = fresh_seconds
        self._stale = stale_seconds
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Task[_Entry]] = {}
        self._generation = 0
        bus.subscribe(self.evict)

    def evict(self, tenant_id: str) -> None:
        """Bus listener: drop a tenant's keys (``*``: everyone's). Other topics only bump the
        generation, which is harmless."""
        self._generation += 1
        if tenant_id == ALL_TENANTS:
            self._entries.clear()
            self._loading.clear()
            return
        self._entries.pop(tenant_id, None)
        self._loading.pop(tenant_id, None)  # later callers start a fresh load

    async def own_keys(self, *, tenant: TenantContext) -> Mapping[str, SecretStr]:
        """The tenant's own keys by family (read-only); empty when ``byo_keys`` is off."""
        if tenant.section(SECTION).get("byo_keys", "off") == "off":
            return NO_KEYS
        tenant_id = tenant.tenant_id
        entry = self._entries.get(tenant_id)
        now = time.monotonic()
        ttl = self._fresh if self._bus.live else min(self._fresh, UNBOUND_TTL)
        if entry is not None and now - entry.fetched <= ttl:
            return entry.keys
        try:
            return (await self._shared_load(tenant)).keys
        except (TimeoutError, SQLAlchemyError, OSError) as exc:
            if entry is not None and now - entry.fetched <= self._stale:
                log.warning("key store unreachable; serving cached provider keys", exc_info=True)
                return entry.keys
            raise Unavailable("the key store is unreachable; retry shortly") from exc

    async def _shared_load(self, tenant: TenantContext) -> _Entry:
        task = self._loading.get(tenant.tenant_id)
        if task is None:
            task = asyncio.ensure_future(self._load(tenant))
            self._loading[tenant.tenant_id] = task
            task.add_done_callback(lambda done: self._settled(tenant.tenant_id, done))
        # One caller giving up (a client disconnecting) must not cancel the others' load.
        return await asyncio.shield(task)

    def _settled(self, tenant_id: str, task: asyncio.Task[_Entry]) -> None:
        if self._loading.get(tenant_id) is task:
            del self._loading[tenant_id]
        if not task.cancelled():
            task.exception()  # retrieved here, so a load nobody awaits any more is not reported

    async def _load(self, tenant: TenantContext) -> _Entry:
        generation = self._generation
        async with self._db.tenant_session(tenant=tenant) as session:
            keys = await ProviderKeysService(session, self._box).decrypted(tenant=tenant)
        entry = _Entry(time.monotonic(), MappingProxyType(keys) if keys else NO_KEYS)
        if generation == self._generation:  # no invalidation raced with the load
            self._entries[tenant.tenant_id] = entry
            self._entries.move_to_end(tenant.tenant_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return entry
