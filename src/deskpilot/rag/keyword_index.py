"""Keeping a knowledge base's BM25 data consistent: the parameters its terms were made with,
and a rebuild of every term and weight from the stored chunks when they change (a different
language, k1 or b) or when the average chunk length has drifted from the one the weights assume.

The rebuild runs in one transaction holding the knowledge base's row lock: writers wait, readers
keep searching the previous version until it commits."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, cast

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.db import Database
from deskpilot.rag.analysis import Analyzer, term_keys
from deskpilot.rag.bm25 import KeywordParams, collection_stats, sparse, term_weights
from deskpilot.rag.config import RagConfig, kb_config
from deskpilot.rag.drafts import context_text
from deskpilot.rag.models import ChunkTermsRow, KnowledgeBaseRow
from deskpilot.rag.repository import KnowledgeBases
from deskpilot.rag.store import insert_postings

PAGE = 2000

_CHUNKS = text(
    "SELECT c.document_id, c.ordinal, c.text, c.headings, d.title FROM rag_chunks c "
    "JOIN rag_documents d ON d.tenant_id = c.tenant_id AND d.document_id = c.document_id "
    "WHERE c.tenant_id = :tenant AND c.kb_id = :kb ORDER BY c.document_id, c.ordinal"
)
_TERMS = text(
    "INSERT INTO rag_terms (tenant_id, kb_id, term_key, term_no, df, max_weight) "
    "SELECT :tenant, :kb, k, n, d, w FROM unnest(CAST(:keys AS bigint[]), "
    "CAST(:nos AS bigint[]), CAST(:dfs AS int[]), CAST(:weights AS float8[])) AS u(k, n, d, w)"
)


def configured(config: RagConfig) -> KeywordParams:
    retrieval = config.retrieval
    return KeywordParams(retrieval.language, retrieval.bm25_k1, retrieval.bm25_b)


def params_of(kb: KnowledgeBaseRow, config: RagConfig) -> KeywordParams:
    """The parameters the knowledge base's stored terms use (the configured ones when it has
    none yet). Queries and new documents follow them until a rebuild adopts the configured."""
    return KeywordParams.from_stored(kb.keyword_params) or configured(config)


def needs_rebuild(kb: KnowledgeBaseRow, config: RagConfig) -> bool:
    stored = KeywordParams.from_stored(kb.keyword_params)
    return stored is not None and kb.chunk_count > 0 and stored != configured(config)


async def rebuild(db: Database, kb_id: str, *, tenant: TenantContext) -> None:
    async with db.tenant_session(tenant=tenant) as session:
        kb = await KnowledgeBases(session).lock(kb_id, tenant=tenant)
        if kb is None:
            return
        params = configured(kb_config(tenant, kb.config))
        rows = [dict(r) for r in (await session.execute(_CHUNKS, _ids(tenant, kb))).mappings()]
        analyzed = await asyncio.to_thread(_analyze, rows, Analyzer(params.language))
        await _replace(session, kb, rows, analyzed, params, tenant=tenant)


def _analyze(rows: list[dict[str, Any]], analyzer: Analyzer) -> list[Counter[str]]:
    return [analyzer.frequencies(context_text(r["title"], r["headings"], r["text"])) for r in rows]


async def _replace(
    session: AsyncSession,
    kb: KnowledgeBaseRow,
    rows: list[dict[str, Any]],
    analyzed: list[Counter[str]],
    params: KeywordParams,
    *,
    tenant: TenantContext,
) -> None:
    total = sum(sum(terms.values()) for terms in analyzed)
    avgdl = max(total / len(rows), 1.0) if rows else None
    weighed = [term_weights(t, avgdl or 1.0, k1=params.k1, b=params.b) for t in analyzed]
    df, heaviest = collection_stats(weighed)
    numbers = {term: number for number, term in enumerate(sorted(df), start=1)}
    keys = term_keys(tenant, kb.kb_id, df)
    for stale in ("rag_terms", "rag_postings"):
        await session.execute(
            text(f"DELETE FROM {stale} WHERE tenant_id = :tenant AND kb_id = :kb"),  # noqa: S608  (a fixed name)
            _ids(tenant, kb),
        )
    ordered = sorted(df)
    for start in range(0, len(ordered), PAGE * 10):
        page = ordered[start : start + PAGE * 10]
        await session.execute(
            _TERMS,
            {
                **_ids(tenant, kb),
                "keys": [keys[t] for t in page],
                "nos": [numbers[t] for t in page],
                "dfs": [df[t] for t in page],
                "weights": [heaviest[t] for t in page],
            },
        )
    updates = [
        {
            "t": tenant.tenant_id,
            "k": kb.kb_id,
            "d": row["document_id"],
            "o": row["ordinal"],
            "weights": sparse(weights, numbers),
            "term_count": sum(terms.values()),
        }
        for row, terms, weights in zip(rows, analyzed, weighed, strict=True)
    ]
    postings = [
        (keys[term], row["document_id"], row["ordinal"], w)
        for row, weights in zip(rows, weighed, strict=True)
        for term, w in weights.items()
    ]
    await insert_postings(session, kb.kb_id, postings, tenant=tenant)
    table = cast(Table, ChunkTermsRow.__table__)
    statement = (
        update(table)
        .where(
            table.c.tenant_id == bindparam("t"),
            table.c.kb_id == bindparam("k"),
            table.c.document_id == bindparam("d"),
            table.c.ordinal == bindparam("o"),
        )
        .values(weights=bindparam("weights"), term_count=bindparam("term_count"))
    )
    connection = await session.connection()
    for start in range(0, len(updates), PAGE):
        await connection.execute(statement, updates[start : start + PAGE])
    kb.term_total, kb.bm25_avgdl = total, avgdl
    kb.next_term_no = len(numbers) + 1
    kb.keyword_params = params.stored()
    kb.revision += 1


def _ids(tenant: TenantContext, kb: KnowledgeBaseRow) -> dict[str, str]:
    return {"tenant": tenant.tenant_id, "kb": kb.kb_id}
