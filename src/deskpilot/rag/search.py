"""Retrieval over one knowledge base: a dense leg (cosine over chunk vectors, through the knowledge
base's own HNSW index when it has one, exact otherwise), a keyword leg (BM25, ``bm25.py``) and
their fusion, in one statement per knowledge base.

Fusion is a convex combination of scores normalised by what each can reach (Bruch et al., "An
Analysis of Fusion Functions for Hybrid Retrieval", 2023): ``w * cosine + (1 - w) * BM25 / the
query's BM25 maximum``. Unlike reciprocal rank fusion it keeps how strongly each leg matched:
a query whose words a chunk holds nearly all of (an error message) lifts it, a paraphrase whose
words barely overlap leaves ranking to the dense leg. On the evaluation sets it is at least as
good as the better leg (docs/concepts/retrieval.md has the numbers). A document's title, embedded
once, lifts its chunks toward the title's similarity when the title matches better.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector import HalfVector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.rag.bm25 import KeywordQuery
from deskpilot.rag.config import Retrieval
from deskpilot.rag.models import KnowledgeBaseRow
from deskpilot.rag.schemas import Filters

MAX_DIMENSIONS = 4000  # pgvector's largest halfvec an HNSW index takes

# Custom plans (a knowledge base's own index is a partial index: only a plan that sees the
# knowledge base's id can use it); joins in the written order (the candidates first, each
# fetched once), whatever the statistics of freshly written tables say; and no sequential scan:
# every table is reached through an index keyed by the tenant and knowledge base, so a search
# never reads, nor waits on, another tenant's rows.
_SETTINGS = text(
    "SELECT set_config('hnsw.ef_search', :ef, true), "
    "set_config('hnsw.iterative_scan', :iterative, true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true), "
    "set_config('join_collapse_limit', '1', true), "
    "set_config('enable_seqscan', 'off', true)"
)


@dataclass(frozen=True, slots=True)
class Scored:
    kb_id: str
    document_id: str
    ordinal: int
    score: float
    dense: float | None
    keyword: float | None
    row: Mapping[str, Any]  # the chunk's text, offsets and its document's title, external id
    rerank: float | None = None


@dataclass(frozen=True, slots=True)
class LegQuery:
    """What one knowledge base is searched with."""

    vector: np.ndarray | None  # the query's embedding (None: keyword only)
    keyword: KeywordQuery | None  # None or empty: dense only
    mode: str
    candidates: int
    filters: Filters


def _filter_sql(filters: Filters, params: dict[str, Any]) -> str:
    conditions = []
    if filters.metadata:
        params["meta"] = json.dumps(filters.metadata)
        conditions.append("metadata @> CAST(:meta AS jsonb)")
    if filters.document_ids is not None:
        params["doc_ids"] = filters.document_ids
        conditions.append("document_id = ANY(CAST(:doc_ids AS text[]))")
    if filters.external_ids is not None:
        params["ext_ids"] = filters.external_ids
        conditions.append("external_id = ANY(CAST(:ext_ids AS text[]))")
    if not conditions:
        return ""
    subquery = "SELECT document_id FROM rag_documents WHERE tenant_id = :tenant AND kb_id = :kb"
    return f" AND document_id IN ({subquery} AND {' AND '.join(conditions)})"


def _statement(dims: int, query: LegQuery, params: dict[str, Any]) -> str:
    if not 0 < dims <= MAX_DIMENSIONS:
        raise ValueError(f"unsupported embedding dimensions: {dims}")
    where = "tenant_id = :tenant AND kb_id = :kb" + _filter_sql(query.filters, params)
    vector = f"CAST(:qv AS halfvec({dims}))"  # dims: an int checked above
    keyword_leg = query.keyword is not None and not query.keyword.empty
    keyword_leg = keyword_leg and query.mode != "dense"
    legs = ["SELECT document_id, ordinal FROM kw"] if keyword_leg else []
    if query.vector is not None and query.mode != "keyword":
        legs.append(
            f"(SELECT document_id, ordinal FROM rag_chunk_vectors WHERE {where} "  # noqa: S608  (fixed text; values are bound)
            f"ORDER BY embedding::halfvec({dims}) <=> {vector} LIMIT :n)"
        )
    if not legs:
        return ""
    dense = f"1 - (v.embedding::halfvec({dims}) <=> {vector})"
    title = f"1 - (d.title_embedding::halfvec({dims}) <=> {vector})"
    if query.vector is None:
        dense = title = "NULL"
    keyword = "-(t.weights <#> CAST(:qs AS sparsevec))" if "qs" in params else "NULL"
    joined = "".join(
        f"JOIN {table} {alias} ON {alias}.tenant_id = :tenant AND {alias}.kb_id = :kb "
        f"AND {alias}.document_id = cand.document_id AND {alias}.ordinal = cand.ordinal "
        for table, alias in (
            ("rag_chunks", "c"),
            ("rag_chunk_vectors", "v"),
            ("rag_chunk_terms", "t"),
        )
    )
    kw = ""
    partial = "NULL"
    if keyword_leg and query.keyword is not None:
        kw = f"kw AS MATERIALIZED ({_keyword_leg(query.keyword, where, params)}), "
        partial = "kw.partial"
        joined = (
            "LEFT JOIN kw ON kw.document_id = cand.document_id AND kw.ordinal = cand.ordinal "
            + joined
        )
    return (
        f"WITH {kw}cand AS MATERIALIZED ({' UNION '.join(legs)}) "  # noqa: S608  (fixed text; values are bound)
        f"SELECT cand.document_id, cand.ordinal, {dense} AS cosine, {title} AS title_cosine, "
        f"{keyword} AS bm25, {partial} AS partial, c.text, c.char_start, c.char_end, "
        f"c.headings, c.page_start, c.page_end, d.external_id, d.title FROM cand {joined}"
        "JOIN rag_documents d ON d.tenant_id = :tenant AND d.document_id = cand.document_id"
    )


def _keyword_leg(keyword: KeywordQuery, where: str, params: dict[str, Any]) -> str:
    """BM25 over the leg's terms, summed from their postings (read by index alone, keyed by
    the tenant, knowledge base and term: equality, which row-level security lets drive an
    index scan); the best ``pool`` (or ``:n``) chunks with their partial scores."""
    params["kkeys"] = list(keyword.keys)
    params["kweights"] = list(keyword.weights)
    params["kn"] = keyword.pool or params["n"]
    # Each posting's query weight by its key's place in the list: no join, so the planner
    # estimates the postings from the terms' statistics and sums them in a hash table.
    query_weight = (
        "(CAST(:kweights AS float8[]))[array_position(CAST(:kkeys AS bigint[]), term_key)]"
    )
    return (
        f"SELECT document_id, ordinal, sum(weight * {query_weight}) AS partial "  # noqa: S608  (fixed text; values are bound)
        f"FROM rag_postings WHERE {where} AND term_key = ANY(CAST(:kkeys AS bigint[])) "
        "GROUP BY document_id, ordinal ORDER BY partial DESC, document_id, ordinal LIMIT :kn"
    )


async def search_kb(
    session: AsyncSession,
    kb: KnowledgeBaseRow,
    query: LegQuery,
    weights: Retrieval,
    *,
    tenant: TenantContext,
) -> list[Scored]:
    """The knowledge base's best ``query.candidates`` chunks for ``query``, fused and sorted."""
    if not kb.chunk_count or kb.dimensions is None:
        return []
    rows = await _run(session, kb, query, tenant=tenant)
    keyword = query.keyword
    # Keyword mode promises BM25's exact best. In hybrid mode the leg only brings candidates
    # (each then scored exactly): its pool stands, a second pass would double its cost for
    # chunks that rarely reach the fused top.
    pruned = keyword is not None and keyword.pool is not None and query.mode == "keyword"
    if pruned and keyword is not None and not _certainly_best(rows, keyword, query.candidates):
        widened = LegQuery(
            query.vector, keyword.widened(), query.mode, query.candidates, query.filters
        )
        rows = await _run(session, kb, widened, tenant=tenant)
    return sorted(
        (_scored(kb.kb_id, row, query, weights) for row in rows),
        key=lambda s: (-s.score, s.document_id, s.ordinal),
    )[: query.candidates]


def _certainly_best(rows: Sequence[Mapping[str, Any]], keyword: KeywordQuery, n: int) -> bool:
    """MaxScore's check: no chunk outside the keyword leg's pool can outscore its best ``n``.
    Such a chunk's partial score is at most the pool's last (none if the pool holds every
    chunk with a leg term), and its left-out terms add at most ``left_out_bound``."""
    partials = [r["partial"] for r in rows if r["partial"] is not None]
    ceiling = keyword.left_out_bound
    if keyword.pool is not None and len(partials) >= keyword.pool:
        ceiling += min(partials)
    best = sorted((r["bm25"] or 0.0 for r in rows), reverse=True)[:n]
    return len(best) == n and best[-1] >= ceiling


async def _run(
    session: AsyncSession, kb: KnowledgeBaseRow, query: LegQuery, *, tenant: TenantContext
) -> list[Mapping[str, Any]]:
    dims = kb.dimensions or 0  # (the caller returned early without dimensions)
    params: dict[str, Any] = {"tenant": tenant.tenant_id, "kb": kb.kb_id, "n": query.candidates}
    if query.vector is not None:
        params["qv"] = HalfVector(query.vector).to_text()
    if query.keyword is not None and not query.keyword.empty:
        params["qs"] = query.keyword.vector.to_text()
    statement = _statement(dims, query, params)
    if not statement:
        return []
    await session.execute(
        _SETTINGS,
        {
            "ef": str(max(100, 2 * query.candidates)),
            "iterative": "relaxed_order" if _filtered(query.filters) else "off",
        },
    )
    result = await session.execute(text(statement), params)
    return [dict(row) for row in result.mappings()]


def _filtered(filters: Filters) -> bool:
    return (
        bool(filters.metadata)
        or filters.document_ids is not None
        or (filters.external_ids is not None)
    )


def _scored(kb_id: str, row: Mapping[str, Any], query: LegQuery, weights: Retrieval) -> Scored:
    dense = row["cosine"]
    if dense is not None and row["title_cosine"] is not None:
        dense += weights.title_weight * max(0.0, row["title_cosine"] - dense)
    keyword = None
    if query.keyword is not None and query.keyword.maximum > 0:
        keyword = (row["bm25"] or 0.0) / query.keyword.maximum
    if query.mode == "dense" or keyword is None:
        score = dense if dense is not None else 0.0
    elif query.mode == "keyword" or dense is None:
        score = keyword
    else:
        score = weights.dense_weight * dense + (1 - weights.dense_weight) * keyword
    return Scored(kb_id, row["document_id"], row["ordinal"], score, dense, keyword, row)


def merge(results: Sequence[Sequence[Scored]], top_k: int) -> list[Scored]:
    """The best ``top_k`` over several knowledge bases (scores share one scale)."""
    everything = [s for result in results for s in result]
    everything.sort(key=lambda s: (-s.score, s.kb_id, s.document_id, s.ordinal))
    return everything[:top_k]
