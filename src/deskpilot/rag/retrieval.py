"""Searching a tenant's knowledge bases, and answering from them with citations.

A search reserves the tenant's request quota, embeds the query once per embedder, reads the
query terms' statistics of every knowledge base searched, searches each (``search.search_kb``)
and keeps the best ``top_k`` overall; its usage event is durable before the hits are returned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import NotFound
from deskpilot.metering import UsageEvent
from deskpilot.quotas import Dimension
from deskpilot.rag import keyword_index
from deskpilot.rag.analysis import Analyzer, term_keys
from deskpilot.rag.bm25 import KeywordQuery, TermStat, keyword_query
from deskpilot.rag.config import RagConfig, kb_config
from deskpilot.rag.models import KnowledgeBaseRow
from deskpilot.rag.repository import KnowledgeBases
from deskpilot.rag.rerank import Passage, reranked
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import Filters, Hit, Mode, SearchRequest, SearchResult
from deskpilot.rag.search import LegQuery, Scored, merge, search_kb

_TERM_STATS = text(
    "SELECT kb_id, term_key, term_no, df, max_weight FROM rag_terms WHERE tenant_id = :tenant "
    "AND kb_id = ANY(CAST(:kbs AS text[])) AND term_key = ANY(CAST(:keys AS bigint[]))"
)


@dataclass(frozen=True, slots=True)
class Target:
    kb: KnowledgeBaseRow
    config: RagConfig


@dataclass(frozen=True, slots=True)
class Retrieved:
    hits: list[Scored]
    names: dict[str, str]  # kb_id -> name
    mode: Mode
    query_tokens: int


async def targets(
    session: AsyncSession, names: Sequence[str] | None, *, tenant: TenantContext
) -> list[Target]:
    rows = await KnowledgeBases(session).by_names(names, tenant=tenant)
    missing = set(names or ()) - {kb.name for kb in rows}
    if missing:
        raise NotFound(f"no knowledge base named {', '.join(sorted(missing))}")
    return [Target(kb, kb_config(tenant, kb.config)) for kb in rows]


async def search(
    rt: RagRuntime, request: SearchRequest, *, tenant: TenantContext, request_id: str
) -> SearchResult:
    tenant.require(Scope.KB_READ)
    started = time.perf_counter()
    # One transaction from the knowledge bases' rows to the hits: one snapshot, one connection.
    async with rt.db.tenant_session(tenant=tenant) as session:
        found = await targets(session, request.knowledge_bases, tenant=tenant)
        async with rt.metered(
            tenant=tenant, request_id=request_id, reserve={Dimension.REQUESTS_PER_MINUTE: 1}
        ) as work:
            retrieved = await retrieve(
                rt,
                session,
                found,
                request.query,
                mode=request.mode,
                top_k=request.top_k,
                filters=request.filters,
                tenant=tenant,
                request_id=request_id,
            )
            event = usage_event("search", request_id, found, retrieved, started)
            await work.record(event, final=True)
    return SearchResult(
        request_id=request_id,
        mode=retrieved.mode,
        hits=[hit_of(s, retrieved.names) for s in retrieved.hits],
        took_ms=round((time.perf_counter() - started) * 1000, 3),
    )


async def retrieve(
    rt: RagRuntime,
    session: AsyncSession,
    found: Sequence[Target],
    query: str,
    *,
    mode: Mode | None,
    top_k: int | None,
    filters: Filters,
    tenant: TenantContext,
    request_id: str,
) -> Retrieved:
    first = found[0].config.retrieval if found else None
    chosen: Mode = mode or (first.mode if first else "hybrid")
    k = top_k or (first.top_k if first else 8)
    names = {t.kb.kb_id: t.kb.name for t in found}
    searchable = [t for t in found if t.kb.chunk_count and t.kb.dimensions is not None]
    if not searchable:
        return Retrieved([], names, chosen, 0)
    # The query embeds (in a worker thread) while its terms' statistics are read.
    embedding = asyncio.ensure_future(
        _query_vectors(rt, searchable, query, chosen, tenant, request_id)
    )
    try:
        keyword = await _keyword_queries(session, searchable, query, chosen, tenant=tenant)
    finally:
        vectors, tokens = await embedding
    results = []
    for target in searchable:
        leg = LegQuery(
            vector=vectors.get(target.kb.embedder_id),
            keyword=keyword.get(target.kb.kb_id),
            mode=chosen,
            candidates=max(target.config.retrieval.candidates, k),
            filters=filters,
        )
        results.append(
            await search_kb(session, target.kb, leg, target.config.retrieval, tenant=tenant)
        )
    reranker = first.reranker if first else None
    if reranker is None or not first:
        return Retrieved(merge(results, k), names, chosen, tokens)
    pool = merge(results, max(k, first.rerank_candidates))
    passages = [
        Passage(names[s.kb_id], s.document_id, s.ordinal, s.row["title"], s.row["text"], s.score)
        for s in pool
    ]
    order = await reranked(rt.rerankers.get(reranker), query, passages, tenant=tenant)
    hits = [dataclasses.replace(pool[i], rerank=score) for i, score in order[:k]]
    return Retrieved(hits, names, chosen, tokens)


async def _query_vectors(
    rt: RagRuntime,
    found: Sequence[Target],
    query: str,
    mode: Mode,
    tenant: TenantContext,
    request_id: str,
) -> tuple[dict[str, np.ndarray], int]:
    if mode == "keyword":
        return {}, 0
    vectors: dict[str, np.ndarray] = {}
    tokens = 0
    for embedder in sorted({t.kb.embedder_id for t in found}):
        embedded, used = await rt.embedders.embed(
            embedder, [query], tenant=tenant, request_id=f"{request_id}:query"
        )
        vectors[embedder] = embedded[0]
        tokens += sum(used)  # (zero through the gateway, which meters its own calls)
    return vectors, tokens


async def _keyword_queries(
    session: AsyncSession,
    found: Sequence[Target],
    query: str,
    mode: Mode,
    *,
    tenant: TenantContext,
) -> dict[str, KeywordQuery]:
    if mode == "dense":
        return {}
    analyzed = {}
    keys: dict[int, tuple[str, str]] = {}  # key -> (kb_id, term)
    for target in found:
        params = keyword_index.params_of(target.kb, target.config)
        terms = Analyzer(params.language).frequencies(query)
        analyzed[target.kb.kb_id] = (terms, params)
        for term, key in term_keys(tenant, target.kb.kb_id, terms).items():
            keys[key] = (target.kb.kb_id, term)
    stats: dict[str, list[TermStat]] = {t.kb.kb_id: [] for t in found}
    if keys:
        rows = await session.execute(
            _TERM_STATS,
            {"tenant": tenant.tenant_id, "kbs": list(stats), "keys": list(keys)},
        )
        for row in rows:
            kb_id, term = keys[row.term_key]
            if kb_id == row.kb_id:
                stats[kb_id].append(
                    TermStat(term, row.term_key, row.term_no, row.df, row.max_weight)
                )
    return {
        t.kb.kb_id: keyword_query(
            analyzed[t.kb.kb_id][0],
            stats[t.kb.kb_id],
            t.kb.chunk_count,
            k1=analyzed[t.kb.kb_id][1].k1,
        )
        for t in found
    }


def hit_of(scored: Scored, names: dict[str, str]) -> Hit:
    row = scored.row
    return Hit(
        knowledge_base=names[scored.kb_id],
        document_id=scored.document_id,
        external_id=row["external_id"],
        title=row["title"],
        chunk=scored.ordinal,
        text=row["text"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        headings=list(row["headings"]),
        page_start=row["page_start"],
        page_end=row["page_end"],
        score=round(scored.score, 6),
        dense=None if scored.dense is None else round(scored.dense, 6),
        keyword=None if scored.keyword is None else round(scored.keyword, 6),
        rerank=scored.rerank,
    )


def usage_event(
    operation: str,
    request_id: str,
    found: Sequence[Target],
    retrieved: Retrieved,
    started: float,
) -> UsageEvent:
    local = [t.kb.embedder_id for t in found if not t.kb.embedder_id.startswith("gateway:")]
    names = ",".join(t.kb.name for t in found)
    return UsageEvent(
        component="rag",
        operation=operation,
        request_id=request_id,
        provider="local" if local and retrieved.query_tokens else "",
        provider_model=local[0][:128] if local and retrieved.query_tokens else "",
        input_tokens=retrieved.query_tokens,
        chunks=len(retrieved.hits),
        knowledge_base=names[:128] or None,
        latency_ms=Decimal(round((time.perf_counter() - started) * 1000, 3)),
    )
