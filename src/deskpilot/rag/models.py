"""Tables of the knowledge bases. Every one is tenant-owned (``tenant_id`` leads its key, row-level
security enabled and forced; see ``deskpilot.core.rls``).

A chunk's three parts live in three tables with the same key, so that each retrieval leg scans
only what it scores: ``rag_chunks`` (text and offsets, for citations), ``rag_chunk_vectors``
(the dense leg: ~0.8 KB a row at 384 dimensions in half precision) and ``rag_chunk_terms`` (the
keyword leg's exact scores: BM25 weights as a sparse vector). ``rag_postings`` is the keyword
leg's inverted index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import HALFVEC, SPARSEVEC
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL
from sqlalchemy.orm import Mapped, mapped_column

from deskpilot.core.models import Base, TenantOwned, Timestamps, tenant_fk

ID = String(24)


def _kb_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "kb_id"], ["rag_knowledge_bases.tenant_id", "rag_knowledge_bases.kb_id"]
    )


def _document_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "document_id"], ["rag_documents.tenant_id", "rag_documents.document_id"]
    )


class KnowledgeBaseRow(TenantOwned, Timestamps, Base):
    __tablename__ = "rag_knowledge_bases"
    __table_args__ = (
        tenant_fk(),
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(
            "dense_index IN ('none', 'building', 'ready', 'failed')", name="dense_index"
        ),
    )

    kb_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # overrides of ``rag``
    embedder_id: Mapped[str] = mapped_column(String(160))
    dimensions: Mapped[int | None] = mapped_column(Integer)  # known once something is embedded
    document_count: Mapped[int] = mapped_column(BigInteger, default=0)
    chunk_count: Mapped[int] = mapped_column(BigInteger, default=0)
    term_total: Mapped[int] = mapped_column(BigInteger, default=0)  # BM25: sum of lengths
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    bm25_avgdl: Mapped[float | None] = mapped_column(Float)  # the length the weights assume
    # language, k1 and b the stored terms and weights were made with (see rag/keyword_index.py)
    keyword_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    next_term_no: Mapped[int] = mapped_column(BigInteger, default=1)
    dense_index: Mapped[str] = mapped_column(String(16), default="none")
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(200))


class DocumentRow(TenantOwned, Timestamps, Base):
    __tablename__ = "rag_documents"
    __table_args__ = (
        tenant_fk(),
        _kb_fk(),
        UniqueConstraint("tenant_id", "kb_id", "external_id"),
        Index(
            "ix_rag_documents_tenant_id_kb_id_content_hash", "tenant_id", "kb_id", "content_hash"
        ),
    )

    document_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kb_id: Mapped[str] = mapped_column(ID)
    external_id: Mapped[str | None] = mapped_column(String(512))
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    doc_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    upload_bytes: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    chunk_count: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    title_embedding: Mapped[Any | None] = mapped_column(HALFVEC())
    created_by: Mapped[str] = mapped_column(String(200))


class ChunkRow(TenantOwned, Base):
    __tablename__ = "rag_chunks"
    __table_args__ = (tenant_fk(), _document_fk())

    kb_id: Mapped[str] = mapped_column(ID, primary_key=True)
    document_id: Mapped[str] = mapped_column(ID, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    headings: Mapped[list[str]] = mapped_column(ARRAY(Text))
    page_start: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)


class ChunkVectorRow(TenantOwned, Base):
    __tablename__ = "rag_chunk_vectors"
    __table_args__ = (tenant_fk(), _document_fk())

    kb_id: Mapped[str] = mapped_column(ID, primary_key=True)
    document_id: Mapped[str] = mapped_column(ID, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    embedding: Mapped[Any] = mapped_column(HALFVEC())


class ChunkTermsRow(TenantOwned, Base):
    __tablename__ = "rag_chunk_terms"
    __table_args__ = (tenant_fk(), _document_fk())

    kb_id: Mapped[str] = mapped_column(ID, primary_key=True)
    document_id: Mapped[str] = mapped_column(ID, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    weights: Mapped[Any] = mapped_column(SPARSEVEC())
    term_count: Mapped[int] = mapped_column(Integer)  # BM25 document length


class PostingRow(TenantOwned, Base):
    """The keyword leg's inverted index: one row per term of a chunk, with its BM25 weight
    (without idf), read by index alone (the weight is in the primary key's index). A btree
    because under row-level security an index can only drive a scan through leakproof
    operators (equality), not GIN's array operators."""

    __tablename__ = "rag_postings"
    __table_args__ = (
        PrimaryKeyConstraint(
            "tenant_id",
            "kb_id",
            "term_key",
            "document_id",
            "ordinal",
            postgresql_include=["weight"],
        ),
        tenant_fk(),
        _document_fk(),
    )

    kb_id: Mapped[str] = mapped_column(ID, primary_key=True)
    term_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[str] = mapped_column(ID, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    weight: Mapped[float] = mapped_column(REAL)


class TermRow(TenantOwned, Base):
    """BM25 statistics per knowledge base: a term's document frequency (in chunks), its number
    in the knowledge base's sparse vectors, and the largest weight a chunk gives it (the bound
    the keyword search prunes with; after deletions it may be above the real one, never
    below)."""

    __tablename__ = "rag_terms"
    __table_args__ = (tenant_fk(), _kb_fk())

    kb_id: Mapped[str] = mapped_column(ID, primary_key=True)
    term_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    term_no: Mapped[int] = mapped_column(BigInteger)
    df: Mapped[int] = mapped_column(Integer)
    max_weight: Mapped[float] = mapped_column(Float)  # the most one chunk weighs it (a bound)


class JobRow(TenantOwned, Timestamps, Base):
    """A background ingestion: queued, running (leased by one process), then done."""

    __tablename__ = "rag_jobs"
    __table_args__ = (tenant_fk(), _kb_fk())

    job_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kb_id: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobItemRow(TenantOwned, Base):
    """One uploaded file of a job; its bytes are dropped once it is processed."""

    __tablename__ = "rag_job_items"
    __table_args__ = (
        tenant_fk(),
        ForeignKeyConstraint(["tenant_id", "job_id"], ["rag_jobs.tenant_id", "rag_jobs.job_id"]),
    )

    job_id: Mapped[str] = mapped_column(ID, primary_key=True)
    item_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str | None] = mapped_column(String(1024))
    media_type: Mapped[str | None] = mapped_column(String(128))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    documents: Mapped[list[Any]] = mapped_column(JSONB, default=list)  # [{document_id, outcome}]
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
