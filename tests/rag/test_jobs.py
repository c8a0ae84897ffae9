"""Background ingestion jobs: queued, run by a worker, reported per file, resumed after a worker
died without storing or billing a file twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from deskpilot.platform import Platform
from deskpilot.rag import Job, JobStatus, KnowledgeHandle, Upload
from deskpilot.rag.jobs import JobWorker
from tests.conftest import TenantFixture
from tests.rag.conftest import rows_of
from tests.rag.corpus import ARTICLES

TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL}


async def finished(kb: KnowledgeHandle, job_id: str, seconds: float = 60) -> Job:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        job = await kb.job(job_id)
        if job.status in TERMINAL:
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


def files() -> list[Upload]:
    return [Upload(content=t.encode(), filename=n) for n, t in ARTICLES.items()]


async def test_a_job_ingests_every_file_and_reports_each(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    queued = await kb.submit(runbooks, files())
    assert (queued.status, queued.total) == (JobStatus.QUEUED, len(ARTICLES))
    job = await finished(kb, queued.job_id)
    assert (job.status, job.succeeded, job.failed) == (JobStatus.SUCCEEDED, len(ARTICLES), 0)
    assert job.items is not None
    assert [i.status for i in job.items] == ["done"] * len(ARTICLES)
    assert {d["outcome"] for i in job.items for d in i.documents} == {"created"}
    assert (await kb.get(runbooks)).document_count == len(ARTICLES)
    # the files' bytes are not kept once ingested
    async with platform.resources.db.dangerously_unscoped_session() as session:
        kept = await session.execute(
            text("SELECT count(*) FROM rag_job_items WHERE tenant_id = :t AND content IS NOT NULL"),
            {"t": tenant_a.slug},
        )
    assert kept.scalar_one() == 0
    assert [j.job_id for j in await kb.jobs(runbooks)] == [queued.job_id]


async def test_a_bad_file_fails_alone(kb: KnowledgeHandle, runbooks: str) -> None:
    uploads = [*files()[:2], Upload(content=b"%PDF-1.4 broken", filename="scan.pdf")]
    job = await finished(kb, (await kb.submit(runbooks, uploads)).job_id)
    assert (job.status, job.succeeded, job.failed) == (JobStatus.PARTIAL, 2, 1)
    assert job.items is not None
    failed = job.items[2]
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["type"] == "corrupt_document"


async def test_a_job_a_dead_worker_left_is_resumed_without_storing_or_billing_twice(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    job = await finished(kb, (await kb.submit(runbooks, files(), request_id="bulk-1")).job_id)
    # A worker that died after storing the last file, before recording it: the file is queued
    # again and the lease ran out.
    async with platform.resources.db.dangerously_unscoped_session() as session:
        await session.execute(
            text(
                "UPDATE rag_job_items SET status = 'queued', content = :content, documents = '[]' "
                "WHERE tenant_id = :t AND job_id = :j AND item_no = 3"
            ),
            {"t": tenant_a.slug, "j": job.job_id, "content": ARTICLES["outlook.md"].encode()},
        )
        await session.execute(
            text(
                "UPDATE rag_jobs SET status = 'running', succeeded = succeeded - 1, "
                "lease_until = :past, finished_at = NULL WHERE tenant_id = :t AND job_id = :j"
            ),
            {"t": tenant_a.slug, "j": job.job_id, "past": datetime.now(UTC) - timedelta(seconds=1)},
        )
    assert await JobWorker(platform.rag).run_one()
    resumed = await finished(kb, job.job_id)
    assert (resumed.status, resumed.succeeded, resumed.unchanged) == (JobStatus.SUCCEEDED, 3, 1)
    assert await rows_of(platform, tenant_a.slug, "rag_documents") == len(ARTICLES)
    await platform.meter.idle()
    now = datetime.now(UTC)
    page = await platform.tenant(tenant_a.context).usage.events(
        now - timedelta(hours=1), now + timedelta(hours=1)
    )
    billed = sorted(e.request_id for e in page.events if e.operation == "ingest")
    assert billed == [f"bulk-1:{n}" for n in range(len(ARTICLES))]
