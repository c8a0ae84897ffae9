"""The Redis quota backend (with ``REDIS_URL``): one Lua script call per reserve.

Holds live only in Redis (see ``lua`` for the keys and the script contract). Durable usage
stays in PostgreSQL (quota_counters, written by the Meter in its ledger transaction) and is
mirrored into Redis:

* a missing mirror (first use of a window, a Redis restart, an expired mirror) makes the script
  answer "load"; the durable value is read under the tenant's binding and written with
  ``SET NX`` and a short expiry (60 s for minute windows, 300 s otherwise), then the script
  runs again. The expiry bounds how long a mirror can drift from PostgreSQL (say, a process
  died between the ledger commit and ``durable_changed``): it is re-read at least that often;
* after each durable batch the Meter calls ``durable_changed``, which adds to mirrors that
  exist (a missing one is loaded later, increment included) and, in the same script, drops
  the holds of the reservations that batch settled (``Meter.record(settles=...)``).

Requests per minute are counted in Redis only. Agent runs per day are counted in Redis at
grant and also added to quota_counters before ``reserve`` returns (one small transaction), so
that a Redis restart does not reset a day's count.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from deskpilot.core.context import TenantContext
from deskpilot.core.db import Database
from deskpilot.core.errors import Unavailable
from deskpilot.core.redis import HotScript, HotScripts, tenant_key
from deskpilot.quotas import lua
from deskpilot.quotas.plan import (
    Ask,
    Granted,
    Increments,
    Mode,
    Plan,
    Refused,
    Usage,
    hook_tenant,
)
from deskpilot.quotas.repository import CounterRepo
from deskpilot.quotas.schemas import Dimension, Reservation, Window
from deskpilot.quotas.units import from_units, limit_units, to_units
from deskpilot.quotas.windows import GAUGE_WINDOW_START

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

MIRROR_TTL_MS = {Window.MINUTE: 60_000, Window.DAY: 300_000, Window.PERIOD: 300_000}
GAUGE_MIRROR_TTL_MS = 300_000
LEASE_SLACK_MS = 60_000  # hold keys outlive the longest lease they carry by this much
LOAD_ATTEMPTS = 3
# redis-py's asyncio pool raises MaxConnectionsError (it does not wait) once max_connections
# (100 by default) are in use; bounding this backend's calls in flight keeps a burst of
# reservations from exhausting the pool the whole process shares.
MAX_IN_FLIGHT = 32
SUFFIXES = ("used", "holds", "amounts", "held")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@functools.lru_cache(maxsize=1024)
def _stamp(window_start: datetime) -> str:
    return window_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def quota_keys(
    dimension: Dimension, window_start: datetime, *, tenant: TenantContext
) -> tuple[str, ...]:
    """used, holds, amounts, held of one dimension x window (see ``lua``)."""
    base = tenant_key("quota", dimension.value, _stamp(window_start), tenant=tenant)
    return tuple(f"{base}:{suffix}" for suffix in SUFFIXES)


def _lua_mode(ask: Ask) -> str:
    if ask.mode is Mode.COUNT:
        return "C" if ask.dimension is Dimension.AGENT_RUNS_PER_DAY else "c"
    return "H" if ask.mode is Mode.HOLD else "h"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisQuotaBackend:
    def __init__(self, redis: Redis, db: Database) -> None:
        self._redis, self._db = redis, db
        # reserve and settle run around every metered call: the lean path
        hot = HotScripts(redis)
        self._reserve = hot.script(lua.RESERVE)
        self._remove = hot.script(lua.REMOVE)
        self._durable = hot.script(lua.DURABLE)
        self._renew = redis.register_script(lua.RENEW)
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def _call(
        self, script: HotScript | AsyncScript, keys: list[str], args: list[str | int]
    ) -> Any:
        async with self._in_flight:
            return await script(keys=keys, args=args)

    async def reserve(self, plan: Plan, *, tenant: TenantContext) -> Granted | Refused:
        reply = await self._run(plan, tenant=tenant, apply=True)
        if reply[0] == "refused":
            ask = plan.asks[int(reply[1]) - 1]
            return Refused(ask.dimension, from_units(ask.dimension, int(reply[2])))
        used = {
            ask.dimension: from_units(ask.dimension, int(reply[1 + 2 * i]))
            for i, ask in enumerate(plan.asks)
        }
        await self._persist_runs(plan, tenant=tenant)
        return Granted(used)

    async def _run(self, plan: Plan, *, tenant: TenantContext, apply: bool) -> list[str]:
        keys: list[str] = []
        args: list[str | int] = [
            _ms(plan.now),
            plan.reservation_id,
            _ms(plan.expires_at),
            _ms(plan.expires_at) - _ms(plan.now) + LEASE_SLACK_MS,
            "1" if apply else "0",
        ]
        for ask in plan.asks:
            keys.extend(quota_keys(ask.dimension, ask.window_start, tenant=tenant))
            end = ask.window_end or plan.now
            count_ttl = max(_ms(end) - _ms(plan.now), 0) + LEASE_SLACK_MS
            args.extend(
                (
                    _lua_mode(ask),
                    limit_units(ask.dimension, ask.limit),
                    to_units(ask.dimension, ask.amount),
                    count_ttl,
                )
            )
        for _ in range(LOAD_ATTEMPTS):
            reply = [_text(v) for v in await self._call(self._reserve, keys, args)]
            if reply[0] != "load":
                return reply
            await self._load([plan.asks[int(i) - 1] for i in reply[1:]], tenant=tenant)
        raise Unavailable("quota counters could not be loaded into Redis; retry shortly")

    async def _load(self, asks: Sequence[Ask], *, tenant: TenantContext) -> None:
        """Mirror durable counters into Redis; ``NX``, so a live mirror is never overwritten."""
        windows = [(a.dimension, a.window_start, a.window_end) for a in asks]
        async with self._db.tenant_session(tenant=tenant) as session:
            durable = await CounterRepo(session).read(windows, tenant=tenant)
        async with self._in_flight, self._redis.pipeline(transaction=False) as pipe:
            for ask in asks:
                value = durable.get((ask.dimension, ask.window_start), Decimal(0))
                used_key = quota_keys(ask.dimension, ask.window_start, tenant=tenant)[0]
                ttl = MIRROR_TTL_MS.get(ask.dimension.window, GAUGE_MIRROR_TTL_MS)
                pipe.set(used_key, to_units(ask.dimension, value), nx=True, px=ttl)
            await pipe.execute()

    async def _persist_runs(self, plan: Plan, *, tenant: TenantContext) -> None:
        runs = [a for a in plan.asks if a.dimension is Dimension.AGENT_RUNS_PER_DAY and a.amount]
        if not runs:
            return
        try:
            async with self._db.tenant_session(tenant=tenant) as session:
                counters = CounterRepo(session)
                for ask in runs:
                    window = (ask.dimension, ask.window_start, ask.window_end)
                    await counters.increment(window, ask.amount, tenant=tenant)
        except BaseException:
            # Not granted after all: free the holds. The Redis count stays (errs towards
            # refusing, never towards admitting).
            held = [(a.dimension, a.window_start) for a in plan.asks if a.held]
            await self._remove_holds(plan.reservation_id, held, tenant=tenant)
            raise

    async def remove(self, reservation: Reservation, *, tenant: TenantContext) -> None:
        held = [(h.dimension, h.window_start) for h in reservation.holds]
        await self._remove_holds(reservation.reservation_id, held, tenant=tenant)

    async def _remove_holds(
        self,
        reservation_id: str,
        held: Sequence[tuple[Dimension, datetime]],
        *,
        tenant: TenantContext,
    ) -> None:
        if held:
            keys = [k for d, s in held for k in quota_keys(d, s, tenant=tenant)[1:]]
            await self._call(self._remove, keys, [reservation_id])

    async def renew(
        self, reservation: Reservation, expires_at: datetime, *, tenant: TenantContext
    ) -> bool:
        now = _ms(datetime.now(UTC))
        keys = [
            k
            for h in reservation.holds
            for k in quota_keys(h.dimension, h.window_start, tenant=tenant)[1:]
        ]
        ttl = _ms(expires_at) - now + LEASE_SLACK_MS
        args: list[str | int] = [now, reservation.reservation_id, _ms(expires_at), ttl]
        return bool(await self._call(self._renew, keys, args))

    async def usage(
        self, asks: Sequence[Ask], *, tenant: TenantContext, now: datetime
    ) -> Mapping[Dimension, Usage]:
        peek = Plan("", "", tuple(asks), now, now)
        reply = await self._run(peek, tenant=tenant, apply=False)
        return {
            ask.dimension: Usage(
                from_units(ask.dimension, int(reply[1 + 2 * i])),
                from_units(ask.dimension, int(reply[2 + 2 * i])),
            )
            for i, ask in enumerate(asks)
        }

    async def durable_changed(
        self, tenant_id: str, increments: Increments, settled: Sequence[Reservation] = ()
    ) -> None:
        totals: dict[tuple[Dimension, datetime], Decimal] = defaultdict(Decimal)
        for delta in increments:
            totals[(Dimension(delta.dimension), delta.window_start)] += delta.amount
        if not totals and not settled:
            return
        tenant = hook_tenant(tenant_id)
        keys = [quota_keys(d, s, tenant=tenant)[0] for d, s in totals]
        args: list[str | int] = [len(keys)]
        args += [to_units(d, amount) for (d, _), amount in totals.items()]
        for reservation in settled:
            for hold in reservation.holds:
                keys += quota_keys(hold.dimension, hold.window_start, tenant=tenant)[1:]
                args.append(reservation.reservation_id)
        await self._call(self._durable, keys, args)

    async def gauge_replaced(self, *, tenant: TenantContext, dimension: Dimension) -> None:
        async with self._in_flight:
            await self._redis.delete(quota_keys(dimension, GAUGE_WINDOW_START, tenant=tenant)[0])

    async def purge_expired(self, *, tenant: TenantContext, now: datetime) -> int:
        """Nothing to do: each reserve drops the expired holds of the windows it checks, and
        every hold key expires on its own a minute after its longest lease."""
        return 0
