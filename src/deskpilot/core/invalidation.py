"""Cross-process notice that a tenant's cached credentials are out of date.

With Redis, a publish reaches every process subscribed to the channel; each evicts its cached
contexts for that tenant. Pub/sub delivers at most once and only to connected subscribers, so a
subscriber that loses its connection reports itself not ``live``: callers then fall back to
short cache lifetimes, and on reconnect everything cached is dropped. Without Redis, the bus is
in-process only and callers must keep lifetimes short (a second) so other processes converge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

CHANNEL = "deskpilot:tenant-access-changed"
ALL_TENANTS = "*"

Listener = Callable[[str], None]
log = logging.getLogger(__name__)


class InvalidationBus:
    """In-process bus; the base for the Redis one."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    @property
    def live(self) -> bool:
        """True when a publish is known to reach every process (never, in-process only)."""
        return False

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _deliver(self, tenant_id: str) -> None:
        for listener in self._listeners:
            listener(tenant_id)

    async def publish(self, tenant_ids: frozenset[str]) -> None:
        for tenant_id in tenant_ids:
            self._deliver(tenant_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisInvalidationBus(InvalidationBus):
    def __init__(self, redis: Redis, *, reconnect_seconds: float = 0.5) -> None:
        super().__init__()
        self._redis = redis
        self._reconnect = reconnect_seconds
        self._task: asyncio.Task[None] | None = None
        self._live = asyncio.Event()

    @property
    def live(self) -> bool:
        return self._live.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="deskpilot-invalidation")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._live.wait(), timeout=2.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._live.clear()

    async def publish(self, tenant_ids: frozenset[str]) -> None:
        for tenant_id in tenant_ids:
            self._deliver(tenant_id)  # this process at once, even if Redis is down
            try:
                await self._redis.publish(CHANNEL, tenant_id)
            except Exception:  # the subscribers' short fallback lifetime covers a lost notice
                log.warning("could not publish invalidation", exc_info=True)

    async def _listen(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("invalidation subscriber disconnected; retrying", exc_info=True)
            self._live.clear()
            await asyncio.sleep(self._reconnect)

    async def _listen_once(self) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            # Notices may have been missed while disconnected: start from nothing.
            self._deliver(ALL_TENANTS)
            self._live.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = message["data"]
                self._deliver(data.decode() if isinstance(data, bytes) else str(data))
