"""What outlives a write: a deleted tenant leaves no rows nor vector index behind, the storage
measurement counts knowledge bases, BM25 terms follow a change of language, limits on uploads."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from deskpilot.core.context import OperatorContext
from deskpilot.core.errors import LimitReached, PayloadTooLarge
from deskpilot.platform import Platform
from deskpilot.rag import KnowledgeHandle, Upload, unscoped_resume_dense_indexes
from tests.conftest import TenantFixture, new_tenant
from tests.rag.conftest import RAG_TABLES, rows_of, upload
from tests.rag.corpus import ARTICLES

OPERATOR = OperatorContext(principal="pytest-rag")


async def dense_indexes(platform: Platform, tenant_id: str) -> list[str]:
    async with platform.resources.db.dangerously_unscoped_session() as session:
        rows = await session.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexdef LIKE :pattern"),
            {"pattern": f"%tenant_id)::text = '{tenant_id}'%"},
        )
        return [r[0] for r in rows]


async def test_deleting_a_tenant_drops_its_rows_and_vector_indexes(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = await new_tenant(platform, OPERATOR, "doomed")
    kb = platform.tenant(doomed.context).kb
    await kb.create({"name": "big"})
    monkeypatch.setattr(platform.rag, "dense_index_min_chunks", 3)
    await kb.ingest("big", [upload(t, filename=n) for n, t in ARTICLES.items()])
    await platform.rag.background.idle()
    assert (await kb.get("big")).dense_index == "ready"
    assert len(await dense_indexes(platform, doomed.slug)) == 1
    await platform.admin(OPERATOR).delete_tenant(doomed.slug)
    assert await dense_indexes(platform, doomed.slug) == []
    for table in (*RAG_TABLES, "rag_knowledge_bases"):
        assert await rows_of(platform, doomed.slug, table) == 0, table


async def test_the_storage_measurement_counts_what_knowledge_bases_hold(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    await kb.ingest(runbooks, [upload(t, filename=n) for n, t in ARTICLES.items()])
    stored = (await kb.get(runbooks)).stored_bytes
    assert stored > sum(len(t) for t in ARTICLES.values())
    await platform.measure_storage()
    status = {s.dimension.value: s for s in await platform.tenant(tenant_a.context).quota_status()}
    assert status["storage_bytes"].used == stored


async def test_a_new_language_rebuilds_the_keyword_index(
    platform: Platform, kb: KnowledgeHandle, runbooks: str
) -> None:
    await kb.ingest(
        runbooks,
        upload("Die Drucker im dritten Stock funktionieren nicht.", media_type="text/plain"),
    )
    before = await kb.search({"query": "Druckern", "mode": "keyword"})
    assert before.hits == []  # English stemming keeps "druckern" and "drucker" apart
    await kb.update(runbooks, {"config": {"retrieval": {"language": "german"}}})
    await platform.rag.background.idle()
    after = await kb.search({"query": "Druckern", "mode": "keyword"})
    assert len(after.hits) == 1


async def test_too_many_files_or_knowledge_bases_are_refused(
    platform: Platform, runbooks: str, tenant_a: TenantFixture
) -> None:
    handle = await platform.admin(OPERATOR).on_tenant(tenant_a.slug)
    await handle.config.patch({"rag_limits": {"files_per_upload": 2, "knowledge_bases": 1}})
    kb = platform.tenant(await platform.authenticate(tenant_a.key)).kb
    files: list[Any] = [Upload(content=t.encode(), filename=n) for n, t in ARTICLES.items()]
    with pytest.raises(PayloadTooLarge):
        await kb.ingest(runbooks, files)
    with pytest.raises(PayloadTooLarge):
        await kb.submit(runbooks, files)
    with pytest.raises(LimitReached):
        await kb.create({"name": "second"})
    assert await rows_of(platform, tenant_a.slug, "rag_documents") == 0


async def test_maintenance_builds_missing_indexes_and_drops_orphans(
    platform: Platform,
    kb: KnowledgeHandle,
    tenant_a: TenantFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await kb.create({"name": "grown"})
    await kb.ingest("grown", [upload(t, filename=n) for n, t in ARTICLES.items()])
    assert (await kb.get("grown")).dense_index == "none"
    monkeypatch.setattr(platform.rag, "dense_index_min_chunks", 3)  # as if it had grown large
    assert await unscoped_resume_dense_indexes(platform.rag) >= 1
    assert (await kb.get("grown")).dense_index == "ready"
    [index] = await dense_indexes(platform, tenant_a.slug)
    # A build that finished after its knowledge base was deleted leaves an orphan behind.
    async with platform.resources.db.dangerously_unscoped_session() as session:
        leaves_first = ("rag_postings", "rag_chunk_terms", "rag_chunk_vectors", "rag_chunks")
        leaves_first += ("rag_terms",)
        rest = ("rag_job_items", "rag_jobs", "rag_documents", "rag_knowledge_bases")
        for table in (*leaves_first, *rest):
            await session.execute(
                text(f"DELETE FROM {table} WHERE tenant_id = :t"),  # noqa: S608  (test constants)
                {"t": tenant_a.slug},
            )
    await unscoped_resume_dense_indexes(platform.rag)
    assert await dense_indexes(platform, tenant_a.slug) == []
    assert index.startswith("rag_dense_kb_")
