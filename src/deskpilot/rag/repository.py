"""Queries of the knowledge-base tables. Every method takes the tenant and adds its filter
(``TenantRepository``); row-level security enforces the same in the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update

from deskpilot.core.context import TenantContext
from deskpilot.core.repository import TenantRepository
from deskpilot.rag.models import (
    ChunkRow,
    ChunkTermsRow,
    ChunkVectorRow,
    DocumentRow,
    JobItemRow,
    JobRow,
    KnowledgeBaseRow,
    PostingRow,
    TermRow,
)

CHUNK_TABLES = (PostingRow, ChunkTermsRow, ChunkVectorRow, ChunkRow)  # delete: leaves first


class KnowledgeBases(TenantRepository[KnowledgeBaseRow]):
    model = KnowledgeBaseRow

    async def by_name(
        self, name: str, *, tenant: TenantContext, lock: bool = False
    ) -> KnowledgeBaseRow | None:
        stmt = self.select(tenant=tenant).where(KnowledgeBaseRow.name == name)
        if lock:  # writers to one knowledge base take turns (its statistics are one row)
            stmt = stmt.with_for_update()
        row: KnowledgeBaseRow | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def by_names(
        self, names: Sequence[str] | None, *, tenant: TenantContext
    ) -> Sequence[KnowledgeBaseRow]:
        stmt = self.select(tenant=tenant).order_by(KnowledgeBaseRow.name)
        if names is not None:
            stmt = stmt.where(KnowledgeBaseRow.name.in_(names))
        return await self.list(stmt)

    async def count(self, *, tenant: TenantContext) -> int:
        tenant_id = self._check(tenant)
        stmt = select(func.count()).where(KnowledgeBaseRow.tenant_id == tenant_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def lock(self, kb_id: str, *, tenant: TenantContext) -> KnowledgeBaseRow | None:
        stmt = self.select(tenant=tenant).where(KnowledgeBaseRow.kb_id == kb_id).with_for_update()
        row: KnowledgeBaseRow | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def delete_contents(self, kb_id: str, *, tenant: TenantContext) -> None:
        """Every row that belongs to the knowledge base, then the knowledge base."""
        tenant_id = self._check(tenant)
        jobs = select(JobRow.job_id).where(JobRow.tenant_id == tenant_id, JobRow.kb_id == kb_id)
        await self.session.execute(
            delete(JobItemRow).where(JobItemRow.tenant_id == tenant_id, JobItemRow.job_id.in_(jobs))
        )
        for model in (*CHUNK_TABLES, TermRow, JobRow, DocumentRow, KnowledgeBaseRow):
            table = cast(Table, model.__table__)
            await self.session.execute(
                delete(table).where(table.c.tenant_id == tenant_id, table.c.kb_id == kb_id)
            )


class Documents(TenantRepository[DocumentRow]):
    model = DocumentRow

    async def by_id(self, document_id: str, *, tenant: TenantContext) -> DocumentRow | None:
        return await self.get(tenant=tenant, document_id=document_id)

    async def by_external_id(
        self, kb_id: str, external_id: str, *, tenant: TenantContext
    ) -> DocumentRow | None:
        stmt = self.select(tenant=tenant).where(
            DocumentRow.kb_id == kb_id, DocumentRow.external_id == external_id
        )
        row: DocumentRow | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def by_content_hash(
        self, kb_id: str, content_hash: str, *, tenant: TenantContext
    ) -> DocumentRow | None:
        stmt = (
            self.select(tenant=tenant)
            .where(DocumentRow.kb_id == kb_id, DocumentRow.content_hash == content_hash)
            .limit(1)
        )
        row: DocumentRow | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def by_external_ids(
        self, kb_id: str, external_ids: Sequence[str], *, tenant: TenantContext
    ) -> dict[str, DocumentRow]:
        if not external_ids:
            return {}
        stmt = self.select(tenant=tenant).where(
            DocumentRow.kb_id == kb_id, DocumentRow.external_id.in_(external_ids)
        )
        return {row.external_id or "": row for row in await self.list(stmt)}

    async def by_content_hashes(
        self, kb_id: str, hashes: Sequence[str], *, tenant: TenantContext
    ) -> dict[str, DocumentRow]:
        stmt = self.select(tenant=tenant).where(
            DocumentRow.kb_id == kb_id, DocumentRow.content_hash.in_(hashes)
        )
        return {row.content_hash: row for row in await self.list(stmt)}

    async def page(
        self, kb_id: str, *, tenant: TenantContext, after: str | None, limit: int
    ) -> Sequence[DocumentRow]:
        stmt = (
            self.select(tenant=tenant)
            .where(DocumentRow.kb_id == kb_id)
            .order_by(DocumentRow.document_id)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(DocumentRow.document_id > after)
        return await self.list(stmt)

    async def delete_chunks(self, document: DocumentRow, *, tenant: TenantContext) -> None:
        tenant_id = self._check(tenant)
        for model in CHUNK_TABLES:
            await self.session.execute(
                delete(model).where(
                    model.tenant_id == tenant_id,
                    model.kb_id == document.kb_id,
                    model.document_id == document.document_id,
                )
            )

    async def chunk_texts(
        self, document_id: str, ordinals: Sequence[int], *, tenant: TenantContext
    ) -> dict[int, str]:
        tenant_id = self._check(tenant)
        stmt = select(ChunkRow.ordinal, ChunkRow.text).where(
            ChunkRow.tenant_id == tenant_id,
            ChunkRow.document_id == document_id,
            ChunkRow.ordinal.in_(ordinals),
        )
        return {row.ordinal: row.text for row in await self.session.execute(stmt)}


class Jobs(TenantRepository[JobRow]):
    model = JobRow

    async def items(self, job_id: str, *, tenant: TenantContext) -> Sequence[JobItemRow]:
        tenant_id = self._check(tenant)
        stmt = (
            select(JobItemRow)
            .where(JobItemRow.tenant_id == tenant_id, JobItemRow.job_id == job_id)
            .order_by(JobItemRow.item_no)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def set_status(self, job_id: str, *, tenant: TenantContext, **values: Any) -> None:
        tenant_id = self._check(tenant)
        await self.session.execute(
            update(JobRow)
            .where(JobRow.tenant_id == tenant_id, JobRow.job_id == job_id)
            .values(**values)
        )
