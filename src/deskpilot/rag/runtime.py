"""What the knowledge bases need from the rest of the platform, and their per-process state.

``RagRuntime`` is built once per process by the ``Platform`` (``platform.rag``): the embedders,
the gateway (answers, provider embeddings), metering and quotas, and the background work a
write schedules (a large knowledge base's vector index, a BM25 rebuild, ingestion jobs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from deskpilot.core.context import TenantContext
from deskpilot.core.resources import Resources
from deskpilot.metered import MeteredFactory
from deskpilot.quotas import QuotaService
from deskpilot.rag.embedders import Embedders, GatewayEmbeddings
from deskpilot.rag.embedding import Embedder
from deskpilot.rag.rerank import Rerankers

log = logging.getLogger(__name__)


class Gateway(GatewayEmbeddings, Protocol):
    async def chat(
        self, *, tenant: TenantContext, body: Any, request_id: str | None = None
    ) -> Any: ...

    def models(self, *, tenant: TenantContext) -> list[dict[str, Any]]: ...


ContextFor = Callable[[str], Awaitable[TenantContext]]
ANALYZE_EVERY = 200  # chunks written by a process between refreshes of the tables' statistics


class Background:
    """Tasks a request starts and does not wait for; waited for (or cancelled) at close.
    A key runs at most once at a time in this process (a second request is dropped)."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, key: str, work: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        if key in self._tasks:
            return False
        task = asyncio.create_task(work(), name=f"rag:{key}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return True

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("knowledge-base background work failed", exc_info=error)

    async def idle(self) -> None:
        """Wait until no background work is left (tests, the eval command)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)


class RagRuntime:
    def __init__(
        self,
        resources: Resources,
        local_embedder: Callable[[], Embedder],
        gateway: Gateway,
        metered: MeteredFactory,
        quotas: QuotaService,
        context_for: ContextFor,
    ) -> None:
        self.resources = resources
        self.db = resources.db
        self.gateway = gateway  # replaceable (tests): embedders and answers look it up per call
        self.embedders = Embedders(local_embedder, lambda: self.gateway)
        self.metered = metered
        self.quotas = quotas
        self.context_for = context_for
        self.background = Background()
        self.rerankers = Rerankers()
        self.jobs_waiting = asyncio.Event()  # set when a job is queued here
        self.dense_index_min_chunks = resources.settings.rag_dense_index_min_chunks
        self._written_since_analyze = 0

    def wrote(self, chunks: int) -> bool:
        """Count chunks written by this process; True (once per ``ANALYZE_EVERY``) when the
        tables' statistics should be refreshed."""
        self._written_since_analyze += chunks
        if self._written_since_analyze < ANALYZE_EVERY:
            return False
        self._written_since_analyze = 0
        return True

    async def close(self) -> None:
        await self.background.close()
        self.embedders.close()
