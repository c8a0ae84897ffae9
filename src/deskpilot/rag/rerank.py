"""The reranker hook: a second opinion on a search's best candidates.

A deployment registers rerankers by name on the platform (``platform.rag.rerankers.register``);
a knowledge base selects one with ``rag.retrieval.reranker`` (and how many candidates it sees,
``rerank_candidates``). The reranker gets the query and the tenant's own candidates only, in
fused order, and returns one score per passage; the hits are reordered by it (ties keep the
fused order) and cut to ``top_k``. No reranker ships built in: a cross-encoder or a provider's
rerank API plugs in here, and meters its own calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import Conflict


@dataclass(frozen=True, slots=True)
class Passage:
    knowledge_base: str
    document_id: str
    chunk: int
    title: str | None
    text: str
    score: float  # the fused score


class Reranker(Protocol):
    async def __call__(
        self, query: str, passages: Sequence[Passage], *, tenant: TenantContext
    ) -> Sequence[float]: ...


class Rerankers:
    """The process's rerankers by name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Reranker] = {}

    def register(self, name: str, reranker: Reranker) -> None:
        self._by_name[name] = reranker

    def unregister(self, name: str) -> None:
        self._by_name.pop(name, None)

    def get(self, name: str) -> Reranker:
        found = self._by_name.get(name)
        if found is None:
            raise Conflict(
                f"the knowledge base's reranker '{name}' is not registered in this deployment"
            )
        return found


async def reranked(
    reranker: Reranker,
    query: str,
    passages: Sequence[Passage],
    *,
    tenant: TenantContext,
) -> list[tuple[int, float]]:
    """(index into ``passages``, reranker score), best first."""
    scores = list(await reranker(query, passages, tenant=tenant))
    if len(scores) != len(passages):
        raise ValueError(f"the reranker scored {len(scores)} of {len(passages)} passages")
    order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
    return [(i, float(scores[i])) for i in order]
