"""Fixtures of the knowledge-base tests: a knowledge base of the test's own tenant, documents
written as text, and reading what the tables hold (operator role) to prove what was stored or
deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from deskpilot.platform import Platform
from deskpilot.rag import KnowledgeHandle, Upload
from tests.conftest import TenantFixture

RAG_TABLES = (
    "rag_documents",
    "rag_chunks",
    "rag_chunk_vectors",
    "rag_chunk_terms",
    "rag_postings",
    "rag_terms",
    "rag_jobs",
    "rag_job_items",
)


def upload(text_: str, **fields: Any) -> Upload:
    fields.setdefault("media_type", "text/markdown")
    return Upload(content=text_.encode(), **fields)


async def rows_of(platform: Platform, tenant_id: str, table: str, **where: str) -> int:
    conditions = " AND ".join(f"{k} = :{k}" for k in where)
    sql = f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant"  # noqa: S608  (test constants)
    if conditions:
        sql += f" AND {conditions}"
    async with platform.resources.db.dangerously_unscoped_session() as session:
        return int((await session.execute(text(sql), {"tenant": tenant_id, **where})).scalar_one())


@pytest.fixture
def kb(platform: Platform, tenant_a: TenantFixture) -> KnowledgeHandle:
    return platform.tenant(tenant_a.context).kb


@pytest.fixture
async def runbooks(kb: KnowledgeHandle) -> AsyncIterator[str]:
    await kb.create({"name": "runbooks", "description": "how we fix things"})
    return "runbooks"


@pytest.fixture
async def idle(platform: Platform) -> AsyncIterator[Any]:
    """Await to let the knowledge bases' background work (index builds, rebuilds) finish."""
    yield platform.rag.background.idle
    await platform.rag.background.idle()
