"""Background ingestion: a large upload is stored as a job (its files in ``rag_job_items``) and
answered at once with the job's id; a worker in any process claims it and ingests its files one
by one. ``GET .../jobs/{id}`` reports progress and each file's outcome.

A worker holds a job by a lease it renews after every file. If its process dies, the lease runs
out and another worker resumes the job from its first unfinished file: ingestion is idempotent
(content-hash dedup) and so is metering (each file's usage is keyed by the job's request id and
the file's number), so a resumed file is neither stored nor billed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import DeskpilotError, NotFound
from deskpilot.rag.drafts import Upload
from deskpilot.rag.ingest import ingest
from deskpilot.rag.knowledge_bases import get_row
from deskpilot.rag.models import JobItemRow, JobRow, KnowledgeBaseRow
from deskpilot.rag.parsing import RecordOptions
from deskpilot.rag.repository import Jobs
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import Job, JobItem, JobStatus, Outcome
from deskpilot.rag.store import new_id

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
POLL_SECONDS = 5.0

_CLAIM = text(
    "UPDATE rag_jobs SET status = 'running', lease_until = :until, attempts = attempts + 1, "
    "started_at = coalesce(started_at, :now), updated_at = :now "
    "WHERE (tenant_id, job_id) = (SELECT tenant_id, job_id FROM rag_jobs "
    "WHERE status = 'queued' OR (status = 'running' AND lease_until < :now) "
    "ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING tenant_id, job_id"
)


def _options(upload: Upload) -> dict[str, Any]:
    records: Any = upload.records
    if isinstance(records, RecordOptions):
        records = {
            "id_field": records.id_field,
            "title_field": records.title_field,
            "text_fields": list(records.text_fields),
            "metadata_fields": list(records.metadata_fields),
        }
    return {
        "external_id": upload.external_id,
        "title": upload.title,
        "metadata": dict(upload.metadata),
        "records": records,
    }


def _upload(item: JobItemRow) -> Upload:
    options = item.options
    records: RecordOptions | bool = options.get("records", True)
    if isinstance(records, dict):
        records = RecordOptions(
            id_field=records["id_field"],
            title_field=records["title_field"],
            text_fields=tuple(records["text_fields"]),
            metadata_fields=tuple(records["metadata_fields"]),
        )
    return Upload(
        content=item.content or b"",
        filename=item.filename,
        media_type=item.media_type,
        external_id=options.get("external_id"),
        title=options.get("title"),
        metadata=options.get("metadata") or {},
        records=records,
    )


async def submit(
    rt: RagRuntime,
    kb_name: str,
    uploads: Sequence[Upload],
    *,
    tenant: TenantContext,
    request_id: str,
) -> Job:
    tenant.require(Scope.KB_WRITE)
    kb = await get_row(rt, kb_name, tenant=tenant)
    job = JobRow(
        job_id=new_id("job"),
        kb_id=kb.kb_id,
        status=JobStatus.QUEUED.value,
        total=len(uploads),
        request_id=request_id,
        created_by=tenant.principal,
    )
    async with rt.db.tenant_session(tenant=tenant) as session:
        Jobs(session).add(job, tenant=tenant)
        await session.flush()
        for number, upload in enumerate(uploads):
            item = JobItemRow(
                job_id=job.job_id,
                item_no=number,
                filename=upload.filename,
                media_type=upload.media_type,
                content=upload.content,
                options=_options(upload),
            )
            item.tenant_id = tenant.tenant_id
            session.add(item)
        await session.flush()
        await session.refresh(job)
        view = _view(job, kb.name, None)
    rt.jobs_waiting.set()
    return view


async def get(rt: RagRuntime, job_id: str, *, tenant: TenantContext) -> Job:
    tenant.require(Scope.KB_READ)
    async with rt.db.tenant_session(tenant=tenant) as session:
        jobs = Jobs(session)
        job = await jobs.get(tenant=tenant, job_id=job_id)
        if job is None:
            raise NotFound(f"no job '{job_id}'")
        kb = await session.get(KnowledgeBaseRow, (tenant.tenant_id, job.kb_id))
        items = await jobs.items(job_id, tenant=tenant)
        return _view(job, kb.name if kb else "", items)


async def list_jobs(rt: RagRuntime, kb_name: str, *, tenant: TenantContext) -> list[Job]:
    tenant.require(Scope.KB_READ)
    kb = await get_row(rt, kb_name, tenant=tenant)
    async with rt.db.tenant_session(tenant=tenant) as session:
        rows = await Jobs(session).list(
            Jobs(session)
            .select(tenant=tenant)
            .where(JobRow.kb_id == kb.kb_id)
            .order_by(JobRow.created_at.desc())
            .limit(100)
        )
        return [_view(job, kb.name, None) for job in rows]


def _view(job: JobRow, kb_name: str, items: Sequence[JobItemRow] | None) -> Job:
    return Job(
        job_id=job.job_id,
        knowledge_base=kb_name,
        status=JobStatus(job.status),
        total=job.total,
        succeeded=job.succeeded,
        unchanged=job.unchanged,
        failed=job.failed,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        items=None
        if items is None
        else [
            JobItem(
                item=i.item_no,
                filename=i.filename,
                status=i.status,
                documents=i.documents,
                error=i.error,
            )
            for i in items
        ],
    )


class JobWorker:
    """Runs queued jobs of any tenant in this process, one at a time."""

    def __init__(self, rt: RagRuntime) -> None:
        self._rt = rt

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.run_one():
                    pass
            except Exception:
                log.exception("a knowledge-base job worker step failed")
            self._rt.jobs_waiting.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rt.jobs_waiting.wait(), POLL_SECONDS)

    async def run_one(self) -> bool:
        """Claim and run one job; False when none is waiting."""
        claimed = await self._unscoped_claim()
        if claimed is None:
            return False
        tenant_id, job_id = claimed
        try:
            tenant = await self._rt.context_for(tenant_id)
        except NotFound:  # the tenant is being deleted: its rows go with it
            return True
        await self._run(job_id, tenant=tenant)
        return True

    async def _unscoped_claim(self) -> tuple[str, str] | None:
        """The oldest waiting job of any tenant (operator role: a worker serves them all)."""
        now = datetime.now(UTC)
        async with self._rt.db.dangerously_unscoped_session() as session:
            row = (await session.execute(_CLAIM, {"now": now, "until": now + LEASE})).first()
        return None if row is None else (row.tenant_id, row.job_id)

    async def _run(self, job_id: str, *, tenant: TenantContext) -> None:
        async with self._rt.db.tenant_session(tenant=tenant) as session:
            job = await Jobs(session).get(tenant=tenant, job_id=job_id)
            kb = (
                None
                if job is None
                else await session.get(KnowledgeBaseRow, (tenant.tenant_id, job.kb_id))
            )
            pending = [] if job is None else [
                i.item_no for i in await Jobs(session).items(job_id, tenant=tenant)
                if i.status == "queued"
            ]  # fmt: skip
        if job is None or kb is None:
            return
        for item_no in pending:
            await self._item(job, kb.name, item_no, tenant=tenant)
        await self._finish(job_id, tenant=tenant)

    async def _item(
        self, job: JobRow, kb_name: str, item_no: int, *, tenant: TenantContext
    ) -> None:
        async with self._rt.db.tenant_session(tenant=tenant) as session:
            item = await session.scalar(
                select(JobItemRow).where(
                    JobItemRow.tenant_id == tenant.tenant_id,
                    JobItemRow.job_id == job.job_id,
                    JobItemRow.item_no == item_no,
                )
            )
        if item is None:
            return
        counter, values = await self._ingest(job, kb_name, item, tenant=tenant)
        async with self._rt.db.tenant_session(tenant=tenant) as session:
            await session.execute(
                text(
                    "UPDATE rag_job_items SET status = :status, documents = CAST(:docs AS jsonb), "
                    "error = CAST(:error AS jsonb), content = NULL WHERE tenant_id = :tenant "
                    "AND job_id = :job AND item_no = :item"
                ),
                {**values, "tenant": tenant.tenant_id, "job": job.job_id, "item": item_no},
            )
            await session.execute(
                text(
                    f"UPDATE rag_jobs SET {counter} = {counter} + 1, lease_until = :until, "  # noqa: S608  (counter is one of three fixed names)
                    "updated_at = now() WHERE tenant_id = :tenant AND job_id = :job"
                ),
                {"until": datetime.now(UTC) + LEASE, "tenant": tenant.tenant_id, "job": job.job_id},
            )

    async def _ingest(
        self, job: JobRow, kb_name: str, item: JobItemRow, *, tenant: TenantContext
    ) -> tuple[str, dict[str, Any]]:
        import json

        try:
            results = await ingest(
                self._rt,
                kb_name,
                [_upload(item)],
                tenant=tenant,
                request_id=f"{job.request_id}:{item.item_no}",
                principal=job.created_by,
            )
        except DeskpilotError as exc:
            error = {"type": exc.type, "detail": exc.detail, **exc.extra()}
            return "failed", {
                "status": "failed",
                "docs": "[]",
                "error": json.dumps(error, default=str),
            }
        documents = [{"document_id": r.document_id, "outcome": r.outcome.value} for r in results]
        changed = any(r.outcome is not Outcome.UNCHANGED for r in results)
        return (
            "succeeded" if changed else "unchanged",
            {"status": "done", "docs": json.dumps(documents), "error": None},
        )

    async def _finish(self, job_id: str, *, tenant: TenantContext) -> None:
        async with self._rt.db.tenant_session(tenant=tenant) as session:
            job = await Jobs(session).get(tenant=tenant, job_id=job_id)
            if job is None:
                return
            if job.failed == 0:
                status = JobStatus.SUCCEEDED
            elif job.succeeded + job.unchanged == 0:
                status = JobStatus.FAILED
            else:
                status = JobStatus.PARTIAL
            job.status, job.finished_at, job.lease_until = status.value, datetime.now(UTC), None
