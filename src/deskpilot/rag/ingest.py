"""Ingestion: uploads to stored, searchable documents.

Everything is parsed, chunked and checked before anything is stored or any quota is taken, so
bad input leaves nothing behind. Then the documents and bytes are reserved against the tenant's
quotas, the chunks are embedded (the next group while the last one is written) and the documents
are written in groups, each document in full: an infrastructure failure mid-way leaves whole
documents only, and retrying the same upload stores the rest (what is stored is unchanged).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import NotFound
from deskpilot.metering import UsageEvent
from deskpilot.quotas import Dimension
from deskpilot.rag import keyword_index
from deskpilot.rag.analysis import Analyzer
from deskpilot.rag.config import GATEWAY_EMBEDDER_PREFIX, RagConfig, kb_config, limits
from deskpilot.rag.dense import build_index
from deskpilot.rag.drafts import Draft, Upload, drafts_of
from deskpilot.rag.maintenance import refresh_statistics
from deskpilot.rag.models import DocumentRow, KnowledgeBaseRow
from deskpilot.rag.parsing import ParseLimits
from deskpilot.rag.repository import Documents, KnowledgeBases
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import Ingested, Outcome
from deskpilot.rag.store import PreparedDocument, Written, write_documents

GROUP_CHUNKS = 256  # chunks embedded, then written, at a time
PROVIDER_DIMENSIONS = 1536  # assumed for a storage estimate before a provider's first answer
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class _Planned:
    draft: Draft
    unchanged_id: str | None  # stored with this very content already
    new: bool  # no document with its external id yet


async def ingest(
    rt: RagRuntime,
    kb_name: str,
    uploads: Sequence[Upload],
    *,
    tenant: TenantContext,
    request_id: str,
    principal: str,
    progress: Progress | None = None,
) -> list[Ingested]:
    tenant.require(Scope.KB_WRITE)
    started = time.perf_counter()
    kb = await _knowledge_base(rt, kb_name, tenant)
    config = kb_config(tenant, kb.config)
    params = keyword_index.params_of(kb, config)
    parse_limits = ParseLimits(max_bytes=limits(tenant).upload_bytes)
    drafts = await asyncio.to_thread(
        _drafts, uploads, config, rt.embedders.count_tokens, Analyzer(params.language), parse_limits
    )
    planned = await _plan(rt, kb, drafts, tenant=tenant)
    writes = [p for p in planned if p.unchanged_id is None]
    results = [_unchanged(p) for p in planned if p.unchanged_id is not None]
    if not writes:
        return results
    reserve: dict[Dimension, Decimal | int] = {
        Dimension.REQUESTS_PER_MINUTE: 1,
        Dimension.DOCUMENTS: sum(p.new for p in writes),
        Dimension.STORAGE_BYTES: sum(_estimate(p.draft, kb) for p in writes),
    }
    async with rt.metered(tenant=tenant, request_id=request_id, reserve=reserve) as work:
        written, tokens = await _embed_and_write(
            rt,
            kb,
            config,
            writes,
            tenant=tenant,
            request_id=request_id,
            principal=principal,
            progress=progress,
            done_before=len(results),
            total=len(planned),
        )
        local = not kb.embedder_id.startswith(GATEWAY_EMBEDDER_PREFIX)
        await work.record(
            UsageEvent(
                component="rag",
                operation="ingest",
                request_id=request_id,
                provider="local" if local else "",
                provider_model=kb.embedder_id[:128] if local else "",
                input_tokens=tokens if local else 0,
                documents=len(written),
                chunks=sum(w.document.chunk_count for w in written),
                bytes=sum(w.document.upload_bytes for w in written),
                knowledge_base=kb.name,
                latency_ms=Decimal(round((time.perf_counter() - started) * 1000, 3)),
            ),
            final=True,
        )
    await _after_writes(rt, kb, written, tenant=tenant)
    return results + [_ingested(w) for w in written]


async def _knowledge_base(rt: RagRuntime, name: str, tenant: TenantContext) -> KnowledgeBaseRow:
    async with rt.db.tenant_session(tenant=tenant) as session:
        kb = await KnowledgeBases(session).by_name(name, tenant=tenant)
    if kb is None:
        raise NotFound(f"no knowledge base named '{name}'")
    return kb


def _drafts(
    uploads: Sequence[Upload],
    config: RagConfig,
    count_tokens: Callable[[Sequence[str]], list[int]],
    analyzer: Analyzer,
    parse_limits: ParseLimits,
) -> list[Draft]:
    return [d for u in uploads for d in drafts_of(u, config, count_tokens, analyzer, parse_limits)]


async def _plan(
    rt: RagRuntime, kb: KnowledgeBaseRow, drafts: Sequence[Draft], *, tenant: TenantContext
) -> list[_Planned]:
    """Which drafts are stored already (same content) and which are new documents."""
    kept = _last_of_each_id(drafts)
    async with rt.db.tenant_session(tenant=tenant) as session:
        matches = await _matches(Documents(session), kb.kb_id, kept, tenant=tenant)
    planned = []
    for draft, (existing, same) in zip(kept, matches, strict=True):
        unchanged = existing.document_id if same and existing is not None else None
        planned.append(_Planned(draft, unchanged, existing is None))
    return planned


def _last_of_each_id(drafts: Sequence[Draft]) -> list[Draft]:
    """An upload naming one external id twice stores its last version once."""
    seen: dict[str | None, int] = {}
    kept: list[Draft | None] = []
    for draft in drafts:
        if draft.external_id is not None and draft.external_id in seen:
            kept[seen[draft.external_id]] = None
        seen[draft.external_id] = len(kept)
        kept.append(draft)
    return [d for d in kept if d is not None]


class _Identified(Protocol):
    @property
    def external_id(self) -> str | None: ...

    @property
    def content_hash(self) -> str: ...


async def _matches(
    documents: Documents, kb_id: str, drafts: Sequence[_Identified], *, tenant: TenantContext
) -> list[tuple[DocumentRow | None, bool]]:
    """For each draft: the stored document it replaces (same external id) or repeats (same
    content, under any id: stored once), and whether its content is the same. A draft whose
    content an earlier draft of the batch holds repeats that one (None, True)."""
    ids = [d.external_id for d in drafts if d.external_id is not None]
    by_id = await documents.by_external_ids(kb_id, ids, tenant=tenant)
    by_hash = await documents.by_content_hashes(
        kb_id, [d.content_hash for d in drafts], tenant=tenant
    )
    found: list[tuple[DocumentRow | None, bool]] = []
    seen: set[str] = set()
    for draft in drafts:
        row = by_id.get(draft.external_id) if draft.external_id is not None else None
        if row is not None and row.content_hash != draft.content_hash:
            found.append((row, False))
        elif row is not None:
            found.append((row, True))
        elif draft.content_hash in by_hash:
            found.append((by_hash[draft.content_hash], True))
        else:
            found.append((None, draft.content_hash in seen))
        seen.add(draft.content_hash)
    return found


def _estimate(draft: Draft, kb: KnowledgeBaseRow) -> int:
    dims = kb.dimensions or PROVIDER_DIMENSIONS
    return draft.prepared(np.zeros((len(draft.chunks), dims), np.float32), None, 0).stored_bytes


def _groups(writes: Sequence[_Planned]) -> list[list[Draft]]:
    groups: list[list[Draft]] = [[]]
    size = 0
    for planned in writes:
        if groups[-1] and size + len(planned.draft.chunks) > GROUP_CHUNKS:
            groups.append([])
            size = 0
        groups[-1].append(planned.draft)
        size += len(planned.draft.chunks)
    return groups


async def _embed_and_write(
    rt: RagRuntime,
    kb: KnowledgeBaseRow,
    config: RagConfig,
    writes: Sequence[_Planned],
    *,
    tenant: TenantContext,
    request_id: str,
    principal: str,
    progress: Progress | None,
    done_before: int,
    total: int,
) -> tuple[list[Written], int]:
    groups = _groups(writes)
    written: list[Written] = []
    tokens = 0
    embedding = asyncio.ensure_future(_embed(rt, kb, groups[0], tenant, f"{request_id}:0"))
    try:
        for number in range(len(groups)):
            prepared, used = await embedding
            if number + 1 < len(groups):  # the next group embeds while this one is written
                rid = f"{request_id}:{number + 1}"
                embedding = asyncio.ensure_future(_embed(rt, kb, groups[number + 1], tenant, rid))
            tokens += used
            written += await _write(rt, kb, config, prepared, tenant=tenant, principal=principal)
            if progress is not None:
                progress(done_before + len(written), total)
    finally:
        if not embedding.done():
            embedding.cancel()
    return written, tokens


async def _embed(
    rt: RagRuntime, kb: KnowledgeBaseRow, group: Sequence[Draft], tenant: TenantContext, rid: str
) -> tuple[list[PreparedDocument], int]:
    """The group's chunks and titles embedded in one call (a title several documents share,
    e.g. a thread's answers, once)."""
    inputs = [text for draft in group for text in draft.embedding_inputs()]
    title_at: dict[str, int] = {}
    for draft in group:
        if draft.title and draft.title not in title_at:
            title_at[draft.title] = len(inputs)
            inputs.append(draft.title)
    vectors, tokens = await rt.embedders.embed(
        kb.embedder_id, inputs, tenant=tenant, request_id=rid
    )
    prepared, at = [], 0
    for draft in group:
        count = len(draft.chunks)
        title = title_at.get(draft.title) if draft.title else None
        prepared.append(
            draft.prepared(
                vectors[at : at + count],
                vectors[title] if title is not None else None,
                sum(tokens[at : at + count]),
            )
        )
        at += count
    return prepared, sum(tokens)


async def _write(
    rt: RagRuntime,
    kb: KnowledgeBaseRow,
    config: RagConfig,
    prepared: Sequence[PreparedDocument],
    *,
    tenant: TenantContext,
    principal: str,
) -> list[Written]:
    async with rt.db.tenant_session(tenant=tenant) as session:
        locked = await KnowledgeBases(session).lock(kb.kb_id, tenant=tenant)
        if locked is None:
            raise NotFound(f"the knowledge base '{kb.name}' was deleted")
        params = keyword_index.params_of(locked, config)
        if locked.bm25_avgdl is None:  # the first write: the lengths the weights assume
            lengths = [sum(c.terms.values()) for d in prepared for c in d.chunks]
            locked.bm25_avgdl = max(sum(lengths) / max(len(lengths), 1), 1.0)
        matches = await _matches(Documents(session), kb.kb_id, prepared, tenant=tenant)
        items = [
            (document, existing)
            for document, (existing, same) in zip(prepared, matches, strict=True)
            if not same  # (stored meanwhile by another upload)
        ]
        written = await write_documents(
            session, locked, items, tenant=tenant, principal=principal, k1=params.k1, b=params.b
        )
        if not locked.keyword_params:
            locked.keyword_params = params.stored()
        kb.chunk_count, kb.dimensions = locked.chunk_count, locked.dimensions
        kb.dense_index = locked.dense_index
    return written


async def _after_writes(
    rt: RagRuntime, kb: KnowledgeBaseRow, written: Sequence[Written], *, tenant: TenantContext
) -> None:
    """Quota gauges follow what is stored (the daily measurement corrects any drift); a
    knowledge base that grew large gets its own vector index; drifted BM25 lengths rebuild."""
    documents = sum(w.documents_delta for w in written)
    stored = sum(w.bytes_delta for w in written)
    if documents:
        await rt.quotas.adjust_gauge(tenant=tenant, dimension=Dimension.DOCUMENTS, delta=documents)
    if stored:
        await rt.quotas.adjust_gauge(tenant=tenant, dimension=Dimension.STORAGE_BYTES, delta=stored)
    if kb.chunk_count >= rt.dense_index_min_chunks and kb.dense_index != "ready":
        rt.background.start(f"dense:{kb.kb_id}", lambda: _build(rt, kb.kb_id, tenant))
    if rt.wrote(sum(w.document.chunk_count for w in written)):
        rt.background.start("analyze", lambda: refresh_statistics(rt.db))
    if any(w.needs_reweight for w in written):
        rt.background.start(
            f"bm25:{kb.kb_id}", lambda: keyword_index.rebuild(rt.db, kb.kb_id, tenant=tenant)
        )


async def _build(rt: RagRuntime, kb_id: str, tenant: TenantContext) -> None:
    await build_index(rt.db, kb_id, tenant=tenant)


def _unchanged(planned: _Planned) -> Ingested:
    draft = planned.draft
    return Ingested(
        document_id=planned.unchanged_id or "",
        external_id=draft.external_id,
        title=draft.title,
        outcome=Outcome.UNCHANGED,
        chunks=len(draft.chunks),
        embedding_tokens=0,
    )


def _ingested(written: Written) -> Ingested:
    row = written.document
    return Ingested(
        document_id=row.document_id,
        external_id=row.external_id,
        title=row.title,
        outcome=Outcome.CREATED if written.created else Outcome.UPDATED,
        chunks=row.chunk_count,
        embedding_tokens=written.embedding_tokens,
    )
