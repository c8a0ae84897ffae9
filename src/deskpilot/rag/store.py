"""Writing a document into a knowledge base, in the caller's transaction, with the knowledge base
row locked (writers to one knowledge base take turns; its BM25 statistics are shared).

A changed document's old chunks are deleted and its new ones inserted in the same transaction,
so a search sees the old version or the new one, never half of each.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.rag.analysis import term_keys
from deskpilot.rag.bm25 import collection_stats, sparse, term_weights
from deskpilot.rag.models import (
    ChunkRow,
    ChunkTermsRow,
    ChunkVectorRow,
    DocumentRow,
    KnowledgeBaseRow,
)
from deskpilot.rag.repository import Documents

BYTES_PER_TERM = 60  # a posting (row and index entry) and an entry of the sparse vector
ROW_OVERHEAD = 120  # tuple headers and keys of a chunk's three rows
REWEIGHT_DRIFT = 0.25  # the average length the weights assume vs the real one

_DF_UP = text(
    "INSERT INTO rag_terms (tenant_id, kb_id, term_key, term_no, df, max_weight) "
    "SELECT :tenant, :kb, k, n, d, w FROM unnest(CAST(:keys AS bigint[]), "
    "CAST(:nos AS bigint[]), CAST(:dfs AS int[]), CAST(:weights AS float8[])) AS u(k, n, d, w) "
    "ON CONFLICT (tenant_id, kb_id, term_key) DO UPDATE SET df = rag_terms.df + excluded.df, "
    "max_weight = greatest(rag_terms.max_weight, excluded.max_weight)"
)
_DF_DOWN = text(
    "WITH old AS (SELECT term_key AS k, count(*) AS n FROM rag_postings "
    "WHERE tenant_id = :tenant AND kb_id = :kb AND document_id = :doc GROUP BY term_key) "
    "UPDATE rag_terms SET df = rag_terms.df - old.n FROM old "
    "WHERE rag_terms.tenant_id = :tenant AND rag_terms.kb_id = :kb AND rag_terms.term_key = old.k "
    "RETURNING rag_terms.term_key, rag_terms.df"
)
_DROP_TERMS = text(
    "DELETE FROM rag_terms WHERE tenant_id = :tenant AND kb_id = :kb "
    "AND term_key = ANY(CAST(:keys AS bigint[]))"
)
_POSTINGS = text(
    "INSERT INTO rag_postings (tenant_id, kb_id, term_key, document_id, ordinal, weight) "
    "SELECT :tenant, :kb, k, d, o, w FROM unnest(CAST(:keys AS bigint[]), "
    "CAST(:docs AS text[]), CAST(:ords AS int[]), CAST(:weights AS real[])) AS u(k, d, o, w)"
)
POSTINGS_PAGE = 20_000
_KNOWN_TERMS = text(
    "SELECT term_key, term_no FROM rag_terms WHERE tenant_id = :tenant AND kb_id = :kb "
    "AND term_key = ANY(CAST(:keys AS bigint[]))"
)


@dataclass(frozen=True, slots=True)
class PreparedChunk:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    headings: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    tokens: int
    terms: Counter[str]  # BM25 terms of the chunk with its title and headings


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A parsed, chunked and embedded document, ready to be written."""

    external_id: str | None
    title: str | None
    source: str | None
    format: str
    content_hash: str
    text: str
    metadata: Mapping[str, Any]
    upload_bytes: int
    chunks: Sequence[PreparedChunk]
    embeddings: np.ndarray  # (len(chunks), dims), L2-normalised
    title_embedding: np.ndarray | None
    embedding_tokens: int

    @property
    def stored_bytes(self) -> int:
        """What the document costs to keep: its text, its chunks' text, vectors and terms."""
        dims = self.embeddings.shape[1] if self.embeddings.size else 0
        chunk_text = sum(len(c.text.encode()) for c in self.chunks)
        terms = sum(len(c.terms) for c in self.chunks) * BYTES_PER_TERM
        vectors = len(self.chunks) * (2 * dims + 8)
        return (
            len(self.text.encode())
            + chunk_text
            + terms
            + vectors
            + len(self.chunks) * (ROW_OVERHEAD)
        )


@dataclass(frozen=True, slots=True)
class Written:
    document: DocumentRow
    created: bool
    documents_delta: int
    bytes_delta: int
    needs_reweight: bool
    embedding_tokens: int


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


async def write_documents(
    session: AsyncSession,
    kb: KnowledgeBaseRow,
    items: Sequence[tuple[PreparedDocument, DocumentRow | None]],
    *,
    tenant: TenantContext,
    principal: str,
    k1: float,
    b: float,
) -> list[Written]:
    """Insert each document (or replace the stored one paired with it) into the locked
    ``kb``: a few statements for the whole batch, whatever its size (replacements first delete
    their old chunks, one document at a time)."""
    written, rows = [], []
    for doc, existing in items:
        old_bytes = 0
        if existing is not None:
            old_bytes = existing.stored_bytes
            kb.chunk_count -= existing.chunk_count
            kb.term_total -= await _remove_chunks(session, kb, existing, tenant=tenant)
            row = existing
            row.version += 1
        else:
            row = DocumentRow(document_id=new_id("doc"), kb_id=kb.kb_id, created_by=principal)
            Documents(session).add(row, tenant=tenant)
        _fill(row, doc)
        rows.append(row)
        kb.chunk_count += len(doc.chunks)
        kb.term_total += sum(sum(c.terms.values()) for c in doc.chunks)
        kb.document_count += existing is None
        kb.stored_bytes += doc.stored_bytes - old_bytes
        if doc.embeddings.size and kb.dimensions is None:
            kb.dimensions = int(doc.embeddings.shape[1])
        written.append(
            Written(
                row,
                existing is None,
                int(existing is None),
                doc.stored_bytes - old_bytes,
                False,
                doc.embedding_tokens,
            )
        )
    await session.flush()  # the document rows exist before their chunks reference them
    docs = [doc for doc, _ in items]
    await _insert_chunks(session, kb, rows, docs, tenant=tenant, k1=k1, b=b)
    kb.revision += 1
    drifted = _drifted(kb)
    return [replace(w, needs_reweight=drifted) for w in written]


async def remove_document(
    session: AsyncSession, kb: KnowledgeBaseRow, document: DocumentRow, *, tenant: TenantContext
) -> int:
    """Delete ``document`` and its chunks from the locked ``kb``; returns the bytes freed."""
    removed_terms = await _remove_chunks(session, kb, document, tenant=tenant)
    kb.document_count -= 1
    kb.chunk_count -= document.chunk_count
    kb.term_total -= removed_terms
    kb.stored_bytes -= document.stored_bytes
    kb.revision += 1
    if kb.chunk_count == 0:
        kb.bm25_avgdl = None
    await session.delete(document)
    return document.stored_bytes


def _fill(row: DocumentRow, doc: PreparedDocument) -> None:
    row.external_id, row.title, row.source = doc.external_id, doc.title, doc.source
    row.format, row.content_hash, row.text = doc.format, doc.content_hash, doc.text
    row.doc_metadata = dict(doc.metadata)
    row.upload_bytes, row.stored_bytes = doc.upload_bytes, doc.stored_bytes
    row.chunk_count = len(doc.chunks)
    row.title_embedding = doc.title_embedding


async def _remove_chunks(
    session: AsyncSession, kb: KnowledgeBaseRow, document: DocumentRow, *, tenant: TenantContext
) -> int:
    """Take the document's chunks out of the BM25 statistics, then delete them; returns the
    BM25 length they had."""
    params = {"tenant": tenant.tenant_id, "kb": kb.kb_id, "doc": document.document_id}
    lengths = await session.execute(
        text(
            "SELECT coalesce(sum(term_count), 0) FROM rag_chunk_terms WHERE tenant_id = :tenant "
            "AND kb_id = :kb AND document_id = :doc"
        ),
        params,
    )
    removed_terms = int(lengths.scalar_one())
    gone = [row.term_key for row in await session.execute(_DF_DOWN, params) if row.df <= 0]
    if gone:
        await session.execute(
            _DROP_TERMS, {"tenant": tenant.tenant_id, "kb": kb.kb_id, "keys": gone}
        )
    await Documents(session).delete_chunks(document, tenant=tenant)
    return removed_terms


async def _insert_chunks(
    session: AsyncSession,
    kb: KnowledgeBaseRow,
    rows: Sequence[DocumentRow],
    docs: Sequence[PreparedDocument],
    *,
    tenant: TenantContext,
    k1: float,
    b: float,
) -> None:
    if not any(doc.chunks for doc in docs):
        return
    avgdl = kb.bm25_avgdl or 1.0
    weighed = [term_weights(chunk.terms, avgdl, k1=k1, b=b) for doc in docs for chunk in doc.chunks]
    numbers = await _term_numbers(session, kb, weighed, tenant=tenant)
    chunks, vectors, terms = [], [], []
    postings: list[tuple[int, str, int, float]] = []
    weights = iter(weighed)
    for row, doc in zip(rows, docs, strict=True):
        key = {"tenant_id": tenant.tenant_id, "kb_id": kb.kb_id, "document_id": row.document_id}
        for chunk, vector in zip(doc.chunks, doc.embeddings, strict=True):
            at = {**key, "ordinal": chunk.ordinal}
            chunks.append(
                {
                    **at,
                    "text": chunk.text,
                    "char_start": chunk.char_start,
                    "char_end": chunk.char_end,
                    "headings": list(chunk.headings),
                    "page_start": chunk.page_start,
                    "page_end": chunk.page_end,
                    "tokens": chunk.tokens,
                }
            )
            vectors.append({**at, "embedding": vector})
            chunk_weights = next(weights)
            terms.append(
                {
                    **at,
                    "weights": sparse(chunk_weights, {t: numbers[t][1] for t in chunk.terms}),
                    "term_count": sum(chunk.terms.values()),
                }
            )
            for term, w in chunk_weights.items():
                postings.append((numbers[term][0], row.document_id, chunk.ordinal, w))
    await session.execute(insert(ChunkRow), chunks)
    await session.execute(insert(ChunkVectorRow), vectors)
    await session.execute(insert(ChunkTermsRow), terms)
    await insert_postings(session, kb.kb_id, postings, tenant=tenant)


async def insert_postings(
    session: AsyncSession,
    kb_id: str,
    postings: Sequence[tuple[int, str, int, float]],
    *,
    tenant: TenantContext,
) -> None:
    """(term key, document id, ordinal, weight) rows, a page per statement (one row each
    would be a round trip each)."""
    for start in range(0, len(postings), POSTINGS_PAGE):
        page = postings[start : start + POSTINGS_PAGE]
        await session.execute(
            _POSTINGS,
            {
                "tenant": tenant.tenant_id,
                "kb": kb_id,
                "keys": [p[0] for p in page],
                "docs": [p[1] for p in page],
                "ords": [p[2] for p in page],
                "weights": [p[3] for p in page],
            },
        )


async def _term_numbers(
    session: AsyncSession,
    kb: KnowledgeBaseRow,
    weighed: Sequence[Mapping[str, float]],
    *,
    tenant: TenantContext,
) -> dict[str, tuple[int, int]]:
    """Each term's (key, number) in the knowledge base, numbering the new ones; raises the
    terms' document frequencies by these chunks, and their largest weights to these chunks'."""
    df, heaviest = collection_stats(weighed)
    keys = term_keys(tenant, kb.kb_id, df)
    params = {"tenant": tenant.tenant_id, "kb": kb.kb_id, "keys": list(keys.values())}
    known = {r.term_key: r.term_no for r in await session.execute(_KNOWN_TERMS, params)}
    numbers: dict[str, tuple[int, int]] = {}
    for term, term_key in keys.items():
        number = known.get(term_key)
        if number is None:
            number = kb.next_term_no
            kb.next_term_no += 1
        numbers[term] = (term_key, number)
    await session.execute(
        _DF_UP,
        {
            "tenant": tenant.tenant_id,
            "kb": kb.kb_id,
            "keys": [numbers[t][0] for t in df],
            "nos": [numbers[t][1] for t in df],
            "dfs": [df[t] for t in df],
            "weights": [heaviest[t] for t in df],
        },
    )
    return numbers


def _drifted(kb: KnowledgeBaseRow) -> bool:
    if not kb.chunk_count or kb.bm25_avgdl is None:
        return False
    actual = kb.term_total / kb.chunk_count
    return abs(actual / kb.bm25_avgdl - 1) > REWEIGHT_DRIFT
