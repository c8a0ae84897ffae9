"""Knowledge bases: knowledge bases, documents, chunks (text, vectors, BM25 terms), per-KB term
statistics, background ingestion jobs. All tenant-owned.

The dense leg's HNSW indexes are not here: one partial index per large knowledge base is built
at run time (``deskpilot.rag.dense``), named ``rag_dense_<kb_id>``.

Revision ID: 0005_rag
Revises: 0004_ledger_function
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import HALFVEC, SPARSEVEC
from sqlalchemy.dialects import postgresql as pg

from deskpilot.core import rls

revision = "0005_rag"
down_revision = "0004_ledger_function"
branch_labels = None
depends_on = None

ID = sa.String(24)
TABLES = (
    "rag_knowledge_bases",
    "rag_documents",
    "rag_chunks",
    "rag_chunk_vectors",
    "rag_chunk_terms",
    "rag_postings",
    "rag_terms",
    "rag_jobs",
    "rag_job_items",
)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=f"fk_{table}_tenant_id_tenants"
    )


def _kb_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "kb_id"],
        ["rag_knowledge_bases.tenant_id", "rag_knowledge_bases.kb_id"],
        name=f"fk_{table}_tenant_id_rag_knowledge_bases",
    )


def _document_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", "document_id"],
        ["rag_documents.tenant_id", "rag_documents.document_id"],
        name=f"fk_{table}_tenant_id_rag_documents",
    )


def _chunk_key() -> list[sa.Column[object]]:
    return [
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("kb_id", ID, nullable=False),
        sa.Column("document_id", ID, nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rag_knowledge_bases",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("kb_id", ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("config", pg.JSONB(), nullable=False),
        sa.Column("embedder_id", sa.String(160), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=True),
        sa.Column("document_count", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.BigInteger(), nullable=False),
        sa.Column("term_total", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("bm25_avgdl", sa.Float(), nullable=True),
        sa.Column("keyword_params", pg.JSONB(), nullable=False),
        sa.Column("next_term_no", sa.BigInteger(), nullable=False),
        sa.Column("dense_index", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "kb_id", name="pk_rag_knowledge_bases"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_rag_knowledge_bases_tenant_id_name"),
        sa.CheckConstraint(
            "dense_index IN ('none', 'building', 'ready', 'failed')",
            name="ck_rag_knowledge_bases_dense_index",
        ),
        _tenant_fk("rag_knowledge_bases"),
    )
    op.create_table(
        "rag_documents",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("document_id", ID, nullable=False),
        sa.Column("kb_id", ID, nullable=False),
        sa.Column("external_id", sa.String(512), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("source", sa.String(1024), nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", pg.JSONB(), nullable=False),
        sa.Column("upload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title_embedding", HALFVEC(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "document_id", name="pk_rag_documents"),
        sa.UniqueConstraint(
            "tenant_id",
            "kb_id",
            "external_id",
            name="uq_rag_documents_tenant_id_kb_id_external_id",
        ),
        _tenant_fk("rag_documents"),
        _kb_fk("rag_documents"),
    )
    op.create_index(
        "ix_rag_documents_tenant_id_kb_id_content_hash",
        "rag_documents",
        ["tenant_id", "kb_id", "content_hash"],
    )
    op.create_table(
        "rag_chunks",
        *_chunk_key(),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("headings", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("page_start", sa.Integer(), nullable=True),
        sa.Column("page_end", sa.Integer(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "kb_id", "document_id", "ordinal", name="pk_rag_chunks"
        ),
        _tenant_fk("rag_chunks"),
        _document_fk("rag_chunks"),
    )
    op.create_table(
        "rag_chunk_vectors",
        *_chunk_key(),
        sa.Column("embedding", HALFVEC(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "kb_id", "document_id", "ordinal", name="pk_rag_chunk_vectors"
        ),
        _tenant_fk("rag_chunk_vectors"),
        _document_fk("rag_chunk_vectors"),
    )
    # Random floats do not compress: keep vectors inline instead of trying to.
    op.execute("ALTER TABLE rag_chunk_vectors ALTER COLUMN embedding SET STORAGE MAIN")
    op.create_table(
        "rag_chunk_terms",
        *_chunk_key(),
        sa.Column("weights", SPARSEVEC(), nullable=False),
        sa.Column("term_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "kb_id", "document_id", "ordinal", name="pk_rag_chunk_terms"
        ),
        _tenant_fk("rag_chunk_terms"),
        _document_fk("rag_chunk_terms"),
    )
    op.create_table(
        "rag_postings",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("kb_id", ID, nullable=False),
        sa.Column("term_key", sa.BigInteger(), nullable=False),
        sa.Column("document_id", ID, nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("weight", pg.REAL(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "kb_id",
            "term_key",
            "document_id",
            "ordinal",
            name="pk_rag_postings",
            postgresql_include=["weight"],
        ),
        _tenant_fk("rag_postings"),
        _document_fk("rag_postings"),
    )
    op.create_table(
        "rag_terms",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("kb_id", ID, nullable=False),
        sa.Column("term_key", sa.BigInteger(), nullable=False),
        sa.Column("term_no", sa.BigInteger(), nullable=False),
        sa.Column("df", sa.Integer(), nullable=False),
        sa.Column("max_weight", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kb_id", "term_key", name="pk_rag_terms"),
        _tenant_fk("rag_terms"),
        _kb_fk("rag_terms"),
    )
    op.create_table(
        "rag_jobs",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("kb_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "job_id", name="pk_rag_jobs"),
        _tenant_fk("rag_jobs"),
        _kb_fk("rag_jobs"),
    )
    op.create_table(
        "rag_job_items",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("item_no", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(1024), nullable=True),
        sa.Column("media_type", sa.String(128), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("options", pg.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("documents", pg.JSONB(), nullable=False),
        sa.Column("error", pg.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "job_id", "item_no", name="pk_rag_job_items"),
        _tenant_fk("rag_job_items"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "job_id"],
            ["rag_jobs.tenant_id", "rag_jobs.job_id"],
            name="fk_rag_job_items_tenant_id_rag_jobs",
        ),
    )
    for table in TABLES:
        rls.tenant_table(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
