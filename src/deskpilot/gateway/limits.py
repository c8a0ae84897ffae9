"""A deployment's own rate limits (``rpm``/``tpm`` in the deployments file).

A provider account has limits of its own; sending past them only earns 429s. Before a
deployment is called the gateway asks ``admit``: over its requests or tokens for the current
minute, the deployment is skipped like a rate-limited one (the next deployment of the alias, or
a fallback, serves) without a call and without touching its circuit breaker. Tokens are
counted after the call from the usage recorded (``spent``).

Counted in fixed UTC minutes. With Redis (``RedisDeploymentLimits``) the counts are shared by
every process, so the limit holds for the whole deployment however many workers serve; without
it (``DeploymentLimits``) each process counts alone. If Redis fails, a request is admitted
(these limits protect the provider account, not a tenant's bill) and the failure is logged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from deskpilot.core.context import TenantContext
from deskpilot.core.redis import tenant_key
from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.schemas import Deployment

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

Clock = Callable[[], float]
KEY_PREFIX = "dp:platform:gateway-limits"  # operator keys' counts: no tenant's
TENANT_STORE = "gateway-limits"  # a tenant's own keys' counts: dp:{tenant}:gateway-limits:...


class Limits(Protocol):
    """``owner``: the tenant whose own provider key the deployment runs on (its counts are
    that tenant's: in Redis under its key prefix, purged with it); None for operator keys."""

    async def admit(
        self, deployment: Deployment, *, owner: TenantContext | None = None
    ) -> None: ...

    async def spent(
        self, deployment: Deployment, tokens: int, *, owner: TenantContext | None = None
    ) -> None: ...


def _limited(deployment: Deployment) -> bool:
    return deployment.rpm is not None or deployment.tpm is not None


def _refusal(deployment: Deployment, limit: str, minute_start: float, now: float) -> ProviderError:
    return ProviderError(
        ErrorKind.RATE_LIMITED,
        f"deployment {deployment.name} reached {limit} for this minute; not called",
        deployment=deployment.name,
        retry_after=max(0.0, minute_start + 60 - now),
    )


@dataclass(slots=True)
class _Minute:
    start: float
    requests: int = 0
    tokens: int = 0


class DeploymentLimits:
    """Per-process counts."""

    def __init__(self, *, clock: Clock = time.time, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._minutes: dict[str, _Minute] = {}

    def _current(self, deployment: Deployment, owner: TenantContext | None) -> _Minute:
        start = self._clock() // 60 * 60
        key = f"{owner.tenant_id if owner else ''}/{deployment.identity()}"
        minute = self._minutes.get(key)
        if minute is None or minute.start != start:
            if minute is None and len(self._minutes) >= self._max_entries:
                self._minutes.clear()  # stale minutes of many deployments: start over
            minute = self._minutes[key] = _Minute(start)
        return minute

    async def admit(self, deployment: Deployment, *, owner: TenantContext | None = None) -> None:
        """Count one request, or raise a rate-limited ``ProviderError`` (no call was made)."""
        if not _limited(deployment):
            return
        minute = self._current(deployment, owner)
        if deployment.rpm is not None and minute.requests >= deployment.rpm:
            limit = f"its rpm limit ({deployment.rpm})"
            raise _refusal(deployment, limit, minute.start, self._clock())
        if deployment.tpm is not None and minute.tokens >= deployment.tpm:
            limit = f"its tpm limit ({deployment.tpm})"
            raise _refusal(deployment, limit, minute.start, self._clock())
        minute.requests += 1

    async def spent(
        self, deployment: Deployment, tokens: int, *, owner: TenantContext | None = None
    ) -> None:
        if deployment.tpm is not None:
            self._current(deployment, owner).tokens += tokens


# KEYS: requests, tokens of this minute. ARGV: rpm (0: none), tpm (0: none), ttl ms.
# Returns 0 admitted (and counted), 1 over rpm, 2 over tpm.
_ADMIT = """
local tpm = tonumber(ARGV[2])
if tpm > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= tpm then return 2 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local rpm = tonumber(ARGV[1])
if rpm > 0 and n > rpm then
  redis.call('DECR', KEYS[1])
  return 1
end
return 0
"""
_SPENT = """
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""
_TTL_MS = 120_000  # a minute's counts outlive it a little


class RedisDeploymentLimits:
    """Counts shared through Redis by every process (one round trip per limited request)."""

    def __init__(self, redis: Redis, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._admit = redis.register_script(_ADMIT)
        self._spent = redis.register_script(_SPENT)

    def _keys(
        self, deployment: Deployment, minute_start: float, owner: TenantContext | None
    ) -> list[str]:
        # identity() holds a digest of the key: a tenant's own key counts apart from the
        # operator's (its own account), and no key ever appears in Redis. A tenant's own key's
        # counts are the tenant's: under its prefix (its Redis Cluster slot, purged with it).
        digest = hashlib.sha256(deployment.identity().encode()).hexdigest()[:24]
        minute = str(int(minute_start))
        if owner is None:
            base = f"{KEY_PREFIX}:{digest}:{minute}"
        else:
            base = tenant_key(TENANT_STORE, digest, minute, tenant=owner)
        return [f"{base}:requests", f"{base}:tokens"]

    async def admit(self, deployment: Deployment, *, owner: TenantContext | None = None) -> None:
        if not _limited(deployment):
            return
        now = self._clock()
        start = now // 60 * 60
        try:
            verdict = int(
                await self._admit(
                    keys=self._keys(deployment, start, owner),
                    args=[deployment.rpm or 0, deployment.tpm or 0, _TTL_MS],
                )
            )
        except Exception:
            log.warning(
                "deployment limits unavailable; admitting", extra={"deployment": deployment.name}
            )
            return
        if verdict == 1:
            raise _refusal(deployment, f"its rpm limit ({deployment.rpm})", start, now)
        if verdict == 2:
            raise _refusal(deployment, f"its tpm limit ({deployment.tpm})", start, now)

    async def spent(
        self, deployment: Deployment, tokens: int, *, owner: TenantContext | None = None
    ) -> None:
        if deployment.tpm is None or tokens <= 0:
            return
        start = self._clock() // 60 * 60
        try:
            keys = self._keys(deployment, start, owner)[1:]
            await self._spent(keys=keys, args=[tokens, _TTL_MS])
        except Exception:
            log.warning(
                "deployment limits unavailable; tokens not counted",
                extra={"deployment": deployment.name},
            )
