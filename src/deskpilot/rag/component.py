"""The knowledge bases as a platform component: their config sections, the storage they hold
for each tenant (measured for billing and the storage quota), the vector indexes a deleted
tenant leaves behind, and the maintenance that resumes interrupted index builds."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select

from deskpilot.core.component import Component
from deskpilot.core.context import TenantContext
from deskpilot.core.resources import Resources, StoredAmount
from deskpilot.rag.config import SECTIONS
from deskpilot.rag.dense import drop_index
from deskpilot.rag.models import KnowledgeBaseRow

log = logging.getLogger(__name__)


async def measure(resources: Resources, *, tenant: TenantContext) -> Sequence[StoredAmount]:
    """Documents and what they take (text, chunks, vectors, terms) for the storage quota."""
    async with resources.db.tenant_session(tenant=tenant) as session:
        documents, stored = (
            await session.execute(
                select(
                    func.coalesce(func.sum(KnowledgeBaseRow.document_count), 0),
                    func.coalesce(func.sum(KnowledgeBaseRow.stored_bytes), 0),
                ).where(KnowledgeBaseRow.tenant_id == tenant.tenant_id)
            )
        ).one()
    return [
        StoredAmount("rag", "documents", int(stored), items=int(documents), quota="storage_bytes")
    ]


async def drop_dense_indexes(resources: Resources, *, tenant: TenantContext) -> None:
    """A deleted tenant's rows go with the generic purge; its knowledge bases' own vector
    indexes are schema objects, dropped here first."""
    async with resources.db.dangerously_unscoped_session() as session:
        kb_ids = (
            await session.scalars(
                select(KnowledgeBaseRow.kb_id).where(
                    KnowledgeBaseRow.tenant_id == tenant.tenant_id,
                    KnowledgeBaseRow.dense_index != "none",
                )
            )
        ).all()
    for kb_id in kb_ids:
        await drop_index(resources.db, kb_id)


COMPONENT = Component(
    name="rag",
    config_sections=SECTIONS,
    purge_steps=(drop_dense_indexes,),
    storage_probes=(measure,),
)
