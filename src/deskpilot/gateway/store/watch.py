"""Telling the gateway runtime, in every process, that the stored deployments changed.

A write marks the bus topic ``DEPLOYMENTS_CHANGED``; after commit the bus delivers it in the
writing process at once and, with Redis, in every other process. A Redis reconnect delivers
``*`` (notices may have been missed), which counts as a change too. Without a live Redis
subscription other processes would never hear of it, so while the bus is not live and someone
listens, a background task compares a fingerprint of the table once per ``poll_seconds``.

Callbacks are plain functions called on the event loop; they must not block or raise (an
exception is logged and swallowed). The runtime typically schedules a reload::

    store.on_deployments_change(lambda: asyncio.create_task(runtime.reload()))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from deskpilot.core.db import Database
from deskpilot.core.invalidation import ALL_TENANTS, InvalidationBus
from deskpilot.gateway.store import repository as repo
from deskpilot.gateway.store.deployments import DEPLOYMENTS_CHANGED

log = logging.getLogger(__name__)
ChangeCallback = Callable[[], None]


class DeploymentWatch:
    def __init__(self, db: Database, bus: InvalidationBus, *, poll_seconds: float = 1.0) -> None:
        self._db = db
        self._bus = bus
        self._poll = poll_seconds
        self._callbacks: list[ChangeCallback] = []
        self._fingerprint: str | None = None
        self._task: asyncio.Task[None] | None = None
        bus.subscribe(self._on_notice)

    def on_change(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        """Take the table's fingerprint now and start comparing against it."""
        with contextlib.suppress(Exception):  # unknown baseline: the first check notifies
            self._fingerprint = await self._current()
        self._task = asyncio.create_task(self._watch(), name="deskpilot-deployments-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notice(self, topic: str) -> None:
        if topic in (DEPLOYMENTS_CHANGED, ALL_TENANTS):
            self._notify()

    def _notify(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("a deployments-changed callback failed")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            if self._bus.live:
                # The bus carries changes. If it stops, nothing says what was missed in
                # between: the first comparison after that (against no baseline) notifies.
                self._fingerprint = None
                continue
            if not self._callbacks:
                continue
            try:
                fingerprint = await self._current()
            except Exception:
                log.warning("could not check the stored deployments for changes", exc_info=True)
                continue
            changed = fingerprint != self._fingerprint
            self._fingerprint = fingerprint
            if changed:
                self._notify()

    async def _current(self) -> str:
        async with self._db.unbound_session() as session:
            return await repo.deployments_fingerprint(session)
