"""Knowledge bases and their documents: create, read, configure, delete. Each function is one
unit of work for one tenant (it opens and commits its own transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from deskpilot.core.config import merge_patch
from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import Conflict, LimitReached, NotFound
from deskpilot.quotas import Dimension
from deskpilot.rag import keyword_index
from deskpilot.rag.config import kb_config, limits
from deskpilot.rag.dense import drop_index
from deskpilot.rag.models import ChunkRow, DocumentRow, KnowledgeBaseRow
from deskpilot.rag.repository import Documents, KnowledgeBases
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import (
    Document,
    DocumentWithText,
    KnowledgeBase,
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
)
from deskpilot.rag.store import new_id, remove_document


def view(kb: KnowledgeBaseRow) -> KnowledgeBase:
    return KnowledgeBase(
        name=kb.name,
        description=kb.description,
        config=kb.config,
        embedder=kb.embedder_id,
        dimensions=kb.dimensions,
        document_count=kb.document_count,
        chunk_count=kb.chunk_count,
        stored_bytes=kb.stored_bytes,
        dense_index=kb.dense_index,
        created_at=kb.created_at,
        updated_at=kb.updated_at,
    )


def document_view(row: DocumentRow, kb_name: str, *, with_text: bool = False) -> Document:
    fields: dict[str, Any] = {
        "document_id": row.document_id,
        "knowledge_base": kb_name,
        "external_id": row.external_id,
        "title": row.title,
        "source": row.source,
        "format": row.format,
        "metadata": row.doc_metadata,
        "chunk_count": row.chunk_count,
        "upload_bytes": row.upload_bytes,
        "stored_bytes": row.stored_bytes,
        "version": row.version,
        "content_hash": row.content_hash,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if with_text:
        return DocumentWithText(**fields, text=row.text)
    return Document(**fields)


async def create(
    rt: RagRuntime, body: KnowledgeBaseCreate, *, tenant: TenantContext
) -> KnowledgeBase:
    tenant.require(Scope.KB_WRITE)
    config = kb_config(tenant, body.config)  # refused (422, by path) before anything is stored
    async with rt.db.tenant_session(tenant=tenant) as session:
        repo = KnowledgeBases(session)
        allowed = limits(tenant).knowledge_bases
        if await repo.count(tenant=tenant) >= allowed:
            raise LimitReached(f"this plan allows {allowed} knowledge bases")
        if await repo.by_name(body.name, tenant=tenant) is not None:
            raise Conflict(f"a knowledge base named '{body.name}' exists")
        row = KnowledgeBaseRow(
            kb_id=new_id("kb"),
            name=body.name,
            description=body.description,
            config=dict(body.config),
            embedder_id=rt.embedders.concrete_id(config.embedder),
            created_by=tenant.principal,
        )
        repo.add(row, tenant=tenant)
        try:
            await session.flush()
        except IntegrityError:  # created at the same moment by another request
            raise Conflict(f"a knowledge base named '{body.name}' exists") from None
        await session.refresh(row)
        return view(row)


async def get_row(rt: RagRuntime, name: str, *, tenant: TenantContext) -> KnowledgeBaseRow:
    async with rt.db.tenant_session(tenant=tenant) as session:
        kb = await KnowledgeBases(session).by_name(name, tenant=tenant)
    if kb is None:
        raise NotFound(f"no knowledge base named '{name}'")
    return kb


async def get(rt: RagRuntime, name: str, *, tenant: TenantContext) -> KnowledgeBase:
    tenant.require(Scope.KB_READ)
    return view(await get_row(rt, name, tenant=tenant))


async def list_all(rt: RagRuntime, *, tenant: TenantContext) -> list[KnowledgeBase]:
    tenant.require(Scope.KB_READ)
    async with rt.db.tenant_session(tenant=tenant) as session:
        return [view(kb) for kb in await KnowledgeBases(session).by_names(None, tenant=tenant)]


async def update(
    rt: RagRuntime, name: str, body: KnowledgeBaseUpdate, *, tenant: TenantContext
) -> KnowledgeBase:
    """A new description, or a merge patch onto the knowledge base's overrides. The embedder
    of a knowledge base holding documents cannot change (its vectors would not compare); a new
    BM25 language, k1 or b rebuilds its terms in the background."""
    tenant.require(Scope.KB_WRITE)
    async with rt.db.tenant_session(tenant=tenant) as session:
        kb = await KnowledgeBases(session).by_name(name, tenant=tenant, lock=True)
        if kb is None:
            raise NotFound(f"no knowledge base named '{name}'")
        if body.description is not None:
            kb.description = body.description
        if body.config is not None:
            overrides = merge_patch(kb.config, body.config)
            config = kb_config(tenant, overrides)
            embedder = rt.embedders.concrete_id(config.embedder)
            if embedder != kb.embedder_id and kb.chunk_count:
                raise Conflict(
                    "the embedder of a knowledge base that holds documents cannot change; "
                    "create a new knowledge base and ingest into it"
                )
            kb.config, kb.embedder_id = overrides, embedder
            if kb.chunk_count == 0:
                kb.dimensions = None
        kb.revision += 1
        await session.flush()
        await session.refresh(kb)
        rebuild = keyword_index.needs_rebuild(kb, kb_config(tenant, kb.config))
        result = view(kb)
    if rebuild:
        rt.background.start(
            f"bm25:{kb.kb_id}",
            lambda: keyword_index.rebuild(rt.db, kb.kb_id, tenant=tenant),
        )
    return result


async def delete(rt: RagRuntime, name: str, *, tenant: TenantContext) -> None:
    tenant.require(Scope.KB_WRITE)
    async with rt.db.tenant_session(tenant=tenant) as session:
        repo = KnowledgeBases(session)
        kb = await repo.by_name(name, tenant=tenant, lock=True)
        if kb is None:
            raise NotFound(f"no knowledge base named '{name}'")
        documents, stored = kb.document_count, kb.stored_bytes
        await repo.delete_contents(kb.kb_id, tenant=tenant)
    await drop_index(rt.db, kb.kb_id)
    await _shrink(rt, documents, stored, tenant=tenant)


async def _shrink(rt: RagRuntime, documents: int, stored: int, *, tenant: TenantContext) -> None:
    if documents:
        await rt.quotas.adjust_gauge(tenant=tenant, dimension=Dimension.DOCUMENTS, delta=-documents)
    if stored:
        await rt.quotas.adjust_gauge(
            tenant=tenant, dimension=Dimension.STORAGE_BYTES, delta=-stored
        )


async def list_documents(
    rt: RagRuntime, name: str, *, tenant: TenantContext, after: str | None, limit: int
) -> list[Document]:
    tenant.require(Scope.KB_READ)
    async with rt.db.tenant_session(tenant=tenant) as session:
        kb = await KnowledgeBases(session).by_name(name, tenant=tenant)
        if kb is None:
            raise NotFound(f"no knowledge base named '{name}'")
        rows = await Documents(session).page(kb.kb_id, tenant=tenant, after=after, limit=limit)
        return [document_view(row, kb.name) for row in rows]


async def get_document(
    rt: RagRuntime, name: str, document_id: str, *, tenant: TenantContext
) -> DocumentWithText:
    tenant.require(Scope.KB_READ)
    async with rt.db.tenant_session(tenant=tenant) as session:
        kb, row = await _document(session, name, document_id, tenant=tenant)
        result = document_view(row, kb.name, with_text=True)
    assert isinstance(result, DocumentWithText)  # noqa: S101  (with_text=True builds one)
    return result


async def document_chunks(
    rt: RagRuntime, name: str, document_id: str, *, tenant: TenantContext
) -> list[Mapping[str, Any]]:
    """The document's chunks as stored: text, offsets, headings, pages, tokens."""
    tenant.require(Scope.KB_READ)
    async with rt.db.tenant_session(tenant=tenant) as session:
        kb, row = await _document(session, name, document_id, tenant=tenant)
        chunks = await session.execute(
            select(ChunkRow)
            .where(
                ChunkRow.tenant_id == tenant.tenant_id,
                ChunkRow.kb_id == kb.kb_id,
                ChunkRow.document_id == row.document_id,
            )
            .order_by(ChunkRow.ordinal)
        )
        return [
            {
                "chunk": c.ordinal,
                "text": c.text,
                "char_start": c.char_start,
                "char_end": c.char_end,
                "headings": list(c.headings),
                "page_start": c.page_start,
                "page_end": c.page_end,
                "tokens": c.tokens,
            }
            for c in chunks.scalars()
        ]


async def delete_document(
    rt: RagRuntime, name: str, document_id: str, *, tenant: TenantContext
) -> None:
    """Its chunks, vectors and terms go with it, in one transaction."""
    tenant.require(Scope.KB_WRITE)
    async with rt.db.tenant_session(tenant=tenant) as session:
        repo = KnowledgeBases(session)
        kb = await repo.by_name(name, tenant=tenant, lock=True)
        row = await Documents(session).by_id(document_id, tenant=tenant)
        if kb is None or row is None or row.kb_id != kb.kb_id:
            raise NotFound(f"no document '{document_id}' in '{name}'")
        freed = await remove_document(session, kb, row, tenant=tenant)
    await _shrink(rt, 1, freed, tenant=tenant)


async def _document(
    session: Any, name: str, document_id: str, *, tenant: TenantContext
) -> tuple[KnowledgeBaseRow, DocumentRow]:
    kb = await KnowledgeBases(session).by_name(name, tenant=tenant)
    row = await Documents(session).by_id(document_id, tenant=tenant)
    if kb is None or row is None or row.kb_id != kb.kb_id:
        raise NotFound(f"no document '{document_id}' in '{name}'")
    return kb, row


async def stored_totals(rt: RagRuntime, *, tenant: TenantContext) -> tuple[int, int, int]:
    """Documents, chunks and bytes the tenant stores (the storage probe)."""
    async with rt.db.tenant_session(tenant=tenant) as session:
        row = (
            await session.execute(
                select(
                    func.coalesce(func.sum(KnowledgeBaseRow.document_count), 0),
                    func.coalesce(func.sum(KnowledgeBaseRow.chunk_count), 0),
                    func.coalesce(func.sum(KnowledgeBaseRow.stored_bytes), 0),
                ).where(KnowledgeBaseRow.tenant_id == tenant.tenant_id)
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])
