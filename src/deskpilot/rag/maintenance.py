"""Maintenance across tenants: knowledge bases that reached the size of their own vector index
but have none (a build a crash interrupted, or one that failed) get it built again."""

from __future__ import annotations

import logging

from sqlalchemy import select, text

from deskpilot.core.db import Database
from deskpilot.core.errors import NotFound
from deskpilot.rag.dense import DDL_LOCK, build_index, drop_index
from deskpilot.rag.models import KnowledgeBaseRow
from deskpilot.rag.runtime import RagRuntime

log = logging.getLogger(__name__)

# The knowledge-base ids (what follows 'rag_dense_') of vector indexes without a knowledge base.
_ORPHANS = text(
    "SELECT substr(indexname, 11) FROM pg_indexes WHERE tablename = 'rag_chunk_vectors' "
    "AND indexname LIKE 'rag\\_dense\\_%' "
    "AND substr(indexname, 11) NOT IN (SELECT kb_id FROM rag_knowledge_bases)"
)


async def unscoped_resume_dense_indexes(rt: RagRuntime) -> int:
    """Build every missing index and drop those whose knowledge base is gone (a build that
    finished after its knowledge base was deleted); operator role: it looks at every tenant.
    Returns how many builds it finished."""
    async with rt.db.dangerously_unscoped_session() as session:
        orphans = (await session.execute(_ORPHANS)).scalars().all()
    for kb_id in orphans:
        await drop_index(rt.db, kb_id)
    async with rt.db.dangerously_unscoped_session() as session:
        due = (
            await session.execute(
                select(KnowledgeBaseRow.tenant_id, KnowledgeBaseRow.kb_id).where(
                    KnowledgeBaseRow.chunk_count >= rt.dense_index_min_chunks,
                    KnowledgeBaseRow.dense_index != "ready",
                )
            )
        ).all()
    built = 0
    for tenant_id, kb_id in due:
        try:
            tenant = await rt.context_for(tenant_id)
        except NotFound:
            continue
        if await build_index(rt.db, kb_id, tenant=tenant) == "ready":
            built += 1
    return built


STATISTICS_TABLES = "rag_documents, rag_chunks, rag_chunk_vectors, rag_chunk_terms, rag_terms"


async def refresh_statistics(db: Database) -> None:
    """ANALYZE the knowledge-base tables. Autovacuum does it in the long run; a burst of
    ingestion into fresh tables would otherwise leave the planner believing they are empty,
    and a search's joins would scan a knowledge base once per candidate."""
    async with db.unscoped_owner_connection() as conn:
        # After an index build, not beside it (see dense.DDL_LOCK); a burst of writes during a
        # long build still gets its statistics when the build ends.
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": DDL_LOCK})
        try:
            await conn.execute(text(f"ANALYZE {STATISTICS_TABLES}"))
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DDL_LOCK})
