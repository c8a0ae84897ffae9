"""The dense leg's indexes: one HNSW index per large knowledge base.

pgvector filters after it scans an HNSW graph, so one index over every tenant's vectors would
give a small tenant next to a large one few or no results (and row-level security filters the
same way). Instead a knowledge base below ``rag_dense_index_min_chunks`` is searched exactly (a
scan of its own rows by primary key: recall 1.0), and one that reaches it gets its own partial
index, ``rag_dense_<kb_id>``, whose predicate pins the tenant and the knowledge base: it holds
nothing else, so another tenant's data never changes its results, recall or latency.

The index is built with ``CREATE INDEX CONCURRENTLY`` (writes go on) under an advisory lock (one
builder per knowledge base across processes); until it is valid the planner keeps using the
exact scan. A build a crash interrupted leaves ``dense_index = 'building'``, which the
maintenance loop resumes.
"""

from __future__ import annotations

import hashlib
import logging
import re

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from deskpilot.core.context import TenantContext
from deskpilot.core.db import Database
from deskpilot.rag.models import KnowledgeBaseRow
from deskpilot.rag.search import MAX_DIMENSIONS

log = logging.getLogger(__name__)

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
BUILD_MEMORY = "512MB"  # the graph of ~250k 384-d vectors fits: no slow on-disk build
DDL_LOCK = 0x7261_6764_646C  # "ragddl": the advisory lock of the knowledge bases' run-time DDL
_KB_ID = re.compile(r"^kb_[0-9a-f]{16}$")
_TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")


def index_name(kb_id: str) -> str:
    if not _KB_ID.match(kb_id):
        raise ValueError(f"not a knowledge base id: {kb_id!r}")
    return f"rag_dense_{kb_id}"


def _create_statement(tenant_id: str, kb_id: str, dims: int) -> str:
    # Identifiers and literals below are checked against their formats: DDL takes no binds.
    if not _TENANT_ID.match(tenant_id) or not 0 < dims <= MAX_DIMENSIONS:
        raise ValueError("refusing to build an index from unchecked values")
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index_name(kb_id)} ON rag_chunk_vectors "
        f"USING hnsw ((embedding::halfvec({dims})) halfvec_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
        f"WHERE tenant_id = '{tenant_id}' AND kb_id = '{kb_id}'"
    )


async def build_index(db: Database, kb_id: str, *, tenant: TenantContext) -> str:
    """Build the knowledge base's index unless another process is; returns its state."""
    async with db.tenant_session(tenant=tenant) as session:
        kb = await session.scalar(
            select(KnowledgeBaseRow).where(
                KnowledgeBaseRow.tenant_id == tenant.tenant_id, KnowledgeBaseRow.kb_id == kb_id
            )
        )
        if kb is None or kb.dimensions is None:
            return "gone"
        dims = kb.dimensions
    async with db.unscoped_owner_connection() as conn:
        lock = int.from_bytes(
            hashlib.blake2b(index_name(kb_id).encode(), digest_size=8).digest(), "big", signed=True
        )
        if not await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock}):
            return "building"  # elsewhere
        try:
            # One concurrent build or ANALYZE at a time: each waits for the other's transaction
            # while holding a lock the other needs (PostgreSQL reports a deadlock).
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": DDL_LOCK})
            try:
                state = await _build(conn, db, tenant, kb_id, dims)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DDL_LOCK})
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
    return state


async def _build(
    conn: AsyncConnection, db: Database, tenant: TenantContext, kb_id: str, dims: int
) -> str:
    await _set_state(db, tenant, kb_id, "building")
    await _drop_invalid(conn, kb_id)
    await conn.execute(text(f"SET maintenance_work_mem = '{BUILD_MEMORY}'"))
    try:
        await conn.execute(text(_create_statement(tenant.tenant_id, kb_id, dims)))
    except Exception:
        log.exception("building a knowledge base's vector index failed", extra={"kb": kb_id})
        await _drop_invalid(conn, kb_id)
        await _set_state(db, tenant, kb_id, "failed")
        return "failed"
    finally:
        await conn.execute(text("RESET maintenance_work_mem"))
    await _set_state(db, tenant, kb_id, "ready")
    return "ready"


async def _drop_invalid(conn: AsyncConnection, kb_id: str) -> None:
    """An interrupted concurrent build leaves an invalid index behind: drop it first."""
    invalid = await conn.scalar(
        text(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND NOT i.indisvalid"
        ),
        {"name": index_name(kb_id)},
    )
    if invalid:
        await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {index_name(kb_id)}"))


async def drop_index(db: Database, kb_id: str) -> None:
    async with db.unscoped_owner_connection() as conn:
        await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {index_name(kb_id)}"))


async def _set_state(db: Database, tenant: TenantContext, kb_id: str, state: str) -> None:
    async with db.tenant_session(tenant=tenant) as session:
        await session.execute(
            update(KnowledgeBaseRow)
            .where(KnowledgeBaseRow.tenant_id == tenant.tenant_id, KnowledgeBaseRow.kb_id == kb_id)
            .values(dense_index=state)
        )
