"""Fixtures of the knowledge-base tests: a knowledge base of the test's own tenant, documents
written as text, and reading what the tables hold (operator role) to prove what was stored or
deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from deskpilot.core.models import Base
from deskpilot.platform import Platform
from deskpilot.rag import KnowledgeHandle, Upload
from tests.conftest import TenantFixture

# every table of the knowledge bases but their own row (whose deletion comes last)
RAG_TABLES = tuple(
    t.name
    for t in Base.metadata.sorted_tables
    if t.name.startswith("rag_") and t.name != "rag_knowledge_bases"
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
