"""Resolving a presented API key into a ``TenantContext``, once per request, cached.

Freshness: a revoke, suspension or config change marks its tenant changed; after commit every
process evicts that tenant's cached contexts (Redis pub/sub when configured). Cached entries
live ``fresh_seconds`` while that notice path is live, and at most one second when it is not, so
a change takes effect within a second across processes either way.

Outages: when the database cannot be reached, a cached context keeps working for
``stale_seconds``, and a key never seen before gets 503, not 401 (a database outage must not
turn valid keys into 401s).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network

from sqlalchemy.exc import SQLAlchemyError

from deskpilot.core.config import ConfigSchema
from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.db import Database
from deskpilot.core.errors import Forbidden, TenantSuspended, Unauthenticated, Unavailable
from deskpilot.core.invalidation import ALL_TENANTS, InvalidationBus
from deskpilot.tenancy.contexts import build_context
from deskpilot.tenancy.keys import OPERATOR_PREFIX, ParsedKey, hash_key, parse_key, verify
from deskpilot.tenancy.repository import load_credential

log = logging.getLogger(__name__)
UNBOUND_TTL = 1.0


@dataclass(frozen=True, slots=True)
class _Entry:
    tenant_id: str
    fetched: float
    context: TenantContext | None = None  # None: no such key (or wrong secret)
    status: str = "active"
    status_reason: str | None = None
    expires_at: datetime | None = None
    revoked: bool = False


class CredentialResolver:
    def __init__(
        self,
        db: Database,
        schema: ConfigSchema,
        bus: InvalidationBus,
        *,
        fresh_seconds: float,
        stale_seconds: float,
        max_entries: int = 10_000,
    ) -> None:
        self._db = db
        self._schema = schema
        self._bus = bus
        self._fresh = fresh_seconds
        self._stale = stale_seconds
        self._max = max_entries
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._generation = 0
        bus.subscribe(self.evict)

    def evict(self, tenant_id: str) -> None:
        self._generation += 1
        if tenant_id == ALL_TENANTS:
            self._cache.clear()
            return
        for digest in [d for d, e in self._cache.items() if e.tenant_id == tenant_id]:
            del self._cache[digest]

    async def resolve(self, token: str, *, client_ip: str | None = None) -> TenantContext:
        parsed = parse_key(token)
        if parsed is None:
            if token.startswith(OPERATOR_PREFIX + "_"):
                raise Unauthenticated("operator credentials cannot be used as a tenant key")
            raise Unauthenticated("malformed API key")
        digest = hash_key(token)
        entry = await self._entry(parsed, digest)
        return self._admit(entry, client_ip)

    async def _entry(self, parsed: ParsedKey, digest: bytes) -> _Entry:
        now = time.monotonic()
        entry = self._cache.get(digest)
        ttl = self._fresh if self._bus.live else min(self._fresh, UNBOUND_TTL)
        if entry is not None and now - entry.fetched <= ttl:
            self._cache.move_to_end(digest)
            return entry
        generation = self._generation
        try:
            fresh = await self._load(parsed)
        except (TimeoutError, SQLAlchemyError, OSError) as exc:
            if entry is not None and now - entry.fetched <= self._stale:
                log.warning("credential store unreachable; serving cached key", exc_info=True)
                return entry
            raise Unavailable("the credential store is unreachable; retry shortly") from exc
        if generation == self._generation:  # no invalidation raced with the load
            self._cache[digest] = fresh
            self._cache.move_to_end(digest)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return fresh

    async def _load(self, parsed: ParsedKey) -> _Entry:
        now = time.monotonic()
        async with self._db.claimed_session(claimed_tenant_id=parsed.tenant_id) as session:
            found = await load_credential(
                session, claimed_tenant_id=parsed.tenant_id, key_id=parsed.key_id
            )
        if found is None or not verify(parsed.token, found[0].secret_hash):
            return _Entry(tenant_id=parsed.tenant_id, fetched=now)
        key, state = found
        context = build_context(
            self._schema,
            state,
            principal=f"key:{key.key_id}",
            scopes=(Scope(s) for s in key.scopes if s in Scope.__members__.values()),
            key_id=key.key_id,
        )
        return _Entry(
            tenant_id=parsed.tenant_id,
            fetched=now,
            context=context,
            status=state.tenant.status,
            status_reason=state.tenant.status_reason,
            expires_at=key.expires_at,
            revoked=key.revoked_at is not None,
        )

    def _admit(self, entry: _Entry, client_ip: str | None) -> TenantContext:
        context = entry.context
        if context is None or entry.status == "deleted":
            raise Unauthenticated("unknown API key")
        if entry.revoked:
            raise Unauthenticated("this API key has been revoked")
        if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
            raise Unauthenticated("this API key has expired")
        if entry.status == "suspended":
            reason = entry.status_reason or "no reason given"
            raise TenantSuspended(f"tenant '{context.tenant_id}' is suspended: {reason}")
        allowlist = context.section("security").get("ip_allowlist", ())
        if allowlist and not _allowed(client_ip, allowlist):
            raise Forbidden("requests from this address are not allowed for this tenant")
        return context


def _allowed(client_ip: str | None, allowlist: tuple[str, ...]) -> bool:
    if client_ip is None:
        return False
    try:
        address = ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ip_network(cidr) for cidr in allowlist)
