"""Optional Redis: the client, and the one function that builds tenant-owned Redis keys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import SetupError
from deskpilot.core.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from deskpilot.core.resources import Resources


async def open_redis(settings: Settings) -> Redis | None:
    """A connected client, or None when ``REDIS_URL`` is unset."""
    if settings.redis_url is None:
        return None
    from redis.asyncio import BlockingConnectionPool, Redis

    # Blocking: a burst waits (up to the timeout) for a free connection instead of failing
    # with "too many connections".
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(), max_connections=64, timeout=5
    )
    client: Redis = Redis.from_pool(pool)  # the client owns (and closes) the pool
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise SetupError(
            f"cannot reach Redis at REDIS_URL: {exc}. Start Redis, fix the URL, or unset "
            "REDIS_URL to run with in-process caches (one process only)."
        ) from exc
    return client


def tenant_key(store: str, *parts: str, tenant: TenantContext) -> str:
    """``dp:{<tenant>}:<store>:<parts...>``. The braces are a Redis Cluster hash tag, so all of
    a tenant's keys live in one slot; every Redis key a component writes is built here."""
    if not store or ":" in store:
        raise ValueError(f"invalid store name {store!r}")
    return ":".join(("dp", "{" + tenant.tenant_id + "}", store, *parts))


def tenant_pattern(tenant: TenantContext) -> str:
    """SCAN pattern matching every key of one tenant (for purge)."""
    return "dp:{" + tenant.tenant_id + "}:*"


async def purge_tenant_keys(resources: Resources, *, tenant: TenantContext) -> None:
    """Purge step: delete every Redis key of the tenant (all built by ``tenant_key``)."""
    redis = resources.redis
    if redis is None:
        return
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=tenant_pattern(tenant), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await redis.unlink(*batch)
            batch.clear()
    if batch:
        await redis.unlink(*batch)


class HotScripts:
    """Lua scripts for the hottest paths (the quota reserve before every LLM call, and the
    settle after it), and the few connections they share.

    A call packs ``EVALSHA`` with hiredis and runs it on a connection it keeps, without
    redis-py's per-command layers (pool checkout with its wait task and liveness probe,
    retry wrapper, observability hooks): about 40% less client CPU per call
    (bench/redis_script.py). The connections are checked out of the client's pool once and
    kept (at most ``keep`` idle), so they count against its size and close with it.

    On ``NOSCRIPT`` (Redis restarted or flushed) a call sends the source with ``EVAL``, which
    caches it again. A call that fails on a kept connection because the server closed it while
    it idled runs once more on a fresh one; any other connection error reaches the caller (a
    script that changes state is not repeated blindly). A connection whose reply was not read
    whole (an error, a cancellation mid-call) is disconnected, never reused out of step."""

    def __init__(self, redis: Redis, *, keep: int = 8) -> None:
        self._pool = redis.connection_pool
        self._keep = keep
        self._idle: list[Any] = []

    def script(self, source: str) -> HotScript:
        return HotScript(self, source)

    async def run(
        self, source: str, sha: str, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        from redis.exceptions import ConnectionError as RedisConnectionError

        if self._idle:
            try:
                return await self._on(self._idle.pop(), source, sha, keys, args)
            except RedisConnectionError:
                # A kept connection that the server closed while it idled (Redis restarted):
                # the call did not run there; once more, on a fresh connection. (Were a
                # connection to drop after a script ran, it would run twice: held amounts and
                # mirrors then over-count, which refuses early, until their keys expire.)
                pass
        fresh = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        return await self._on(fresh, source, sha, keys, args)

    async def _on(
        self,
        connection: Any,
        source: str,
        sha: str,
        keys: Sequence[str],
        args: Sequence[str | int],
    ) -> Any:
        from redis.exceptions import NoScriptError, ResponseError

        in_step = False
        try:
            try:
                reply = await _run(connection, "EVALSHA", sha, keys, args)
            except NoScriptError:
                reply = await _run(connection, "EVAL", source, keys, args)
            in_step = True
            return reply
        except ResponseError:
            in_step = True  # a whole error reply was read
            raise
        finally:
            if in_step and len(self._idle) < self._keep:
                self._idle.append(connection)
            else:
                if not in_step:
                    await connection.disconnect(nowait=True)
                await self._pool.release(connection)


class HotScript:
    """One script of ``HotScripts``, called like a registered script:
    ``await script(keys=[...], args=[...])``."""

    def __init__(self, scripts: HotScripts, source: str) -> None:
        self._scripts = scripts
        self._source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, *, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        return await self._scripts.run(self._source, self.sha, keys, args)


async def _run(
    connection: Any, command: str, script: str, keys: Sequence[str], args: Sequence[str | int]
) -> Any:
    await connection.send_packed_command(_pack(command, script, len(keys), *keys, *args))
    return await connection.read_response()


def _pack(*parts: str | int) -> bytes:
    import hiredis  # installed with redis (the redis[hiredis] dependency)

    # (hiredis's stub types the argument as a 1-tuple; any tuple of parts is packed)
    packed: bytes = hiredis.pack_command(parts)  # type: ignore[arg-type]
    return packed
