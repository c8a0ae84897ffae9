"""The embedders a knowledge base can use, behind one async call.

* ``local``: the bundled model (``deskpilot.rag.embedding``), offline, run in this process on a
  small thread pool of its own so that a large ingestion and a query take turns (the model's
  own threads use every core; more callers at once would only queue inside it).
* ``gateway:<alias>``: a provider's embeddings through the tenant's LLM gateway, which routes,
  reserves quota for and meters each call like any other.

A knowledge base stores the concrete embedder id it was built with (the local model's id carries
its version): vectors of two embedders are never compared.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import Conflict, Unavailable
from deskpilot.rag.config import GATEWAY_EMBEDDER_PREFIX, LOCAL_EMBEDDER
from deskpilot.rag.embedding import Embedder

BATCH = 64  # texts per model call: a query waits at most one batch of an ingestion


class GatewayEmbeddings(Protocol):
    async def embeddings(
        self, *, tenant: TenantContext, body: Any, request_id: str | None = None
    ) -> Any: ...


class Embedders:
    """Per process: the local model (loaded on first use) and the gateway."""

    def __init__(
        self,
        local: Callable[[], Embedder],
        gateway: Callable[[], GatewayEmbeddings],
        *,
        threads: int = 1,
    ) -> None:
        self._local_factory = local
        self._gateway = gateway  # looked up per call: the runtime's current gateway
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def local(self) -> Embedder:
        return self._local_factory()

    def concrete_id(self, configured: str) -> str:
        """The id a new knowledge base records for the configured embedder."""
        return self.local.id if configured == LOCAL_EMBEDDER else configured

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Chunk sizes are counted with the local model's tokenizer, whichever embedder the
        knowledge base uses (providers' limits are far above a chunk)."""
        return list(self.local.count_tokens(texts))

    async def embed(
        self, embedder_id: str, texts: Sequence[str], *, tenant: TenantContext, request_id: str
    ) -> tuple[np.ndarray, list[int]]:
        """Vectors (L2-normalised rows) and each text's tokens, for the local model (a
        provider's tokens are in the gateway's usage events: zeros here)."""
        if embedder_id.startswith(GATEWAY_EMBEDDER_PREFIX):
            return await self._through_gateway(
                embedder_id.removeprefix(GATEWAY_EMBEDDER_PREFIX),
                texts,
                tenant=tenant,
                request_id=request_id,
            )
        local = self.local
        if embedder_id != local.id:
            raise Conflict(
                f"this knowledge base was embedded with '{embedder_id}', which this deployment "
                f"no longer has (it has '{local.id}'): re-create it to re-embed its documents"
            )
        loop = asyncio.get_running_loop()
        parts = [
            await loop.run_in_executor(self._pool, _embed_counted, local, texts[i : i + BATCH])
            for i in range(0, len(texts), BATCH)
        ]
        if not parts:
            return np.zeros((0, local.dimensions), np.float32), []
        return np.concatenate([v for v, _ in parts]), [n for _, c in parts for n in c]

    async def _through_gateway(
        self, alias: str, texts: Sequence[str], *, tenant: TenantContext, request_id: str
    ) -> tuple[np.ndarray, list[int]]:
        # The knowledge base's own embedder, configured by the tenant: its calls are the
        # platform's on the tenant's behalf, so the caller's key needs no 'llm' scope for them.
        acting = dataclasses.replace(tenant, scopes=tenant.scopes | {Scope.LLM})
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), BATCH):
            served = await self._gateway().embeddings(
                tenant=acting,
                body={"model": alias, "input": list(texts[start : start + BATCH])},
                request_id=f"{request_id}:embed:{start // BATCH}",
            )
            data = sorted(served.body.get("data", []), key=lambda item: item.get("index", 0))
            if len(data) != len(texts[start : start + BATCH]):
                raise Unavailable(f"the embeddings of '{alias}' came back incomplete")
            batch = np.asarray([item["embedding"] for item in data], dtype=np.float32)
            vectors.append(_normalised(batch))
        if not vectors:
            return np.zeros((0, 0), np.float32), []
        return np.concatenate(vectors), [0] * len(texts)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _embed_counted(local: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """One worker-thread call: the vectors and the tokens they cost."""
    return local.embed(list(texts)), list(local.count_tokens(list(texts)))
