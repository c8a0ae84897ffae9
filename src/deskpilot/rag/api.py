"""HTTP routes of the knowledge bases, under ``/v1``.

Documents are added with ``POST /v1/knowledge-bases/{name}/documents`` in one of three shapes:
JSON (``TextDocument``), ``multipart/form-data`` (one or more ``file`` parts, optional form
fields), or a raw file body (its own ``Content-Type``, ``?filename=``). Small uploads are
ingested before the response (201); large ones (more files than ``rag_limits.inline_documents``,
or ``?background=true``) become a job (202) whose progress ``GET .../jobs/{job_id}`` reports.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import FieldError, NotFound, ValidationFailed
from deskpilot.core.http import billing_request_id, problem_responses
from deskpilot.core.validation import field_errors
from deskpilot.deps import PlatformDep, require
from deskpilot.rag import (
    Answer,
    AskRequest,
    Document,
    DocumentWithText,
    Job,
    KnowledgeBase,
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
    RecordOptions,
    SearchRequest,
    SearchResult,
    TextDocument,
    Upload,
)
from deskpilot.rag.config import limits
from deskpilot.rag.handles import text_upload
from deskpilot.rag.schemas import DOCUMENT_ID, JOB_ID, KB_NAME, Ingested

router = APIRouter(
    prefix="/v1",
    tags=["knowledge bases"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
)

Reader = Annotated[TenantContext, Depends(require(Scope.KB_READ))]
Writer = Annotated[TenantContext, Depends(require(Scope.KB_WRITE))]
Name = Annotated[str, Path(pattern=KB_NAME)]
DocumentId = Annotated[str, Path(pattern=DOCUMENT_ID)]
JobId = Annotated[str, Path(pattern=JOB_ID)]
FORM_FIELDS = frozenset(
    {"external_id", "title", "metadata", "records", "id_field", "title_field", "text_fields",
     "metadata_fields", "file"}
)  # fmt: skip


@router.post("/knowledge-bases", status_code=201)
async def create_knowledge_base(
    body: KnowledgeBaseCreate, platform: PlatformDep, tenant: Writer
) -> KnowledgeBase:
    return await platform.tenant(tenant).kb.create(body)


@router.get("/knowledge-bases")
async def list_knowledge_bases(platform: PlatformDep, tenant: Reader) -> list[KnowledgeBase]:
    return await platform.tenant(tenant).kb.list()


@router.get("/knowledge-bases/{name}")
async def get_knowledge_base(name: Name, platform: PlatformDep, tenant: Reader) -> KnowledgeBase:
    return await platform.tenant(tenant).kb.get(name)


@router.patch("/knowledge-bases/{name}")
async def update_knowledge_base(
    name: Name, body: KnowledgeBaseUpdate, platform: PlatformDep, tenant: Writer
) -> KnowledgeBase:
    return await platform.tenant(tenant).kb.update(name, body)


@router.delete("/knowledge-bases/{name}", status_code=204)
async def delete_knowledge_base(name: Name, platform: PlatformDep, tenant: Writer) -> Response:
    await platform.tenant(tenant).kb.delete(name)
    return Response(status_code=204)


@router.post(
    "/knowledge-bases/{name}/documents",
    status_code=201,
    responses={202: {"model": Job, "description": "Queued as a background job."}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": TextDocument.model_json_schema()},
                "multipart/form-data": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
async def add_documents(
    name: Name,
    request: Request,
    platform: PlatformDep,
    tenant: Writer,
    filename: Annotated[str | None, Query(max_length=1024)] = None,
    background: Annotated[bool | None, Query(description="None: by the upload's size.")] = None,
) -> Any:
    """Ingest documents: a JSON ``TextDocument``, a multipart upload (``file`` parts, and
    optionally ``external_id``, ``title``, ``metadata`` (a JSON object), ``records``,
    ``id_field``, ``title_field``, ``text_fields``, ``metadata_fields``) or a raw file."""
    uploads = await _uploads(request, filename)
    handle = platform.tenant(tenant).kb
    rid = billing_request_id(request)
    if background is None:
        background = len(uploads) > limits(tenant).inline_documents
    if background:
        job = await handle.submit(name, uploads, request_id=rid)
        return JSONResponse(job.model_dump(mode="json"), status_code=202)
    results: list[Ingested] = await handle.ingest(name, uploads, request_id=rid)
    return {"documents": [r.model_dump(mode="json") for r in results]}


async def _uploads(request: Request, filename: str | None) -> list[Upload]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            document = TextDocument.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _refused(exc) from None
        return [text_upload(document)]
    if content_type == "multipart/form-data":
        return await _form_uploads(request)
    body = await request.body()
    return [Upload(content=body, filename=filename, media_type=content_type or None)]


async def _form_uploads(request: Request) -> list[Upload]:
    async with request.form() as form:  # closes the spooled files at the end
        unknown = set(form.keys()) - FORM_FIELDS
        if unknown:
            raise ValidationFailed(
                "unknown form fields",
                tuple(FieldError(k, "not a field of this upload") for k in sorted(unknown)),
            )
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        if not files:
            raise ValidationFailed(
                "no file", (FieldError("file", "send one or more 'file' parts"),)
            )
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if len(files) > 1 and ("external_id" in fields or "title" in fields):
            raise ValidationFailed(
                "per-file fields with several files",
                (FieldError("external_id", "only with a single file"),),
            )
        metadata = _metadata(fields.get("metadata"))
        records = _records(fields)
        return [
            Upload(
                content=await f.read(),
                filename=f.filename,
                media_type=f.content_type,
                external_id=fields.get("external_id"),
                title=fields.get("title"),
                metadata=metadata,
                records=records,
            )
            for f in files
        ]


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(v, str | int | float | bool) for v in value.values()
    ):
        raise ValidationFailed(
            "metadata refused",
            (FieldError("metadata", "a JSON object of strings, numbers and booleans"),),
        )
    return value


def _records(fields: dict[str, str]) -> RecordOptions | bool:
    if fields.get("records", "").lower() in {"false", "0", "no"}:
        return False

    def listed(name: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in fields.get(name, "").split(",") if p.strip())

    return RecordOptions(
        id_field=fields.get("id_field") or None,
        title_field=fields.get("title_field") or None,
        text_fields=listed("text_fields"),
        metadata_fields=listed("metadata_fields"),
    )


def _refused(exc: ValidationError) -> ValidationFailed:
    return ValidationFailed("document refused", field_errors(exc))


@router.get("/knowledge-bases/{name}/documents")
async def list_documents(
    name: Name,
    platform: PlatformDep,
    tenant: Reader,
    after: Annotated[str | None, Query(pattern=DOCUMENT_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Document]:
    return await platform.tenant(tenant).kb.documents(name, after=after, limit=limit)


@router.get("/knowledge-bases/{name}/documents/{document_id}")
async def get_document(
    name: Name, document_id: DocumentId, platform: PlatformDep, tenant: Reader
) -> DocumentWithText:
    return await platform.tenant(tenant).kb.document(name, document_id)


@router.get("/knowledge-bases/{name}/documents/{document_id}/chunks")
async def document_chunks(
    name: Name, document_id: DocumentId, platform: PlatformDep, tenant: Reader
) -> list[dict[str, Any]]:
    return [dict(c) for c in await platform.tenant(tenant).kb.chunks(name, document_id)]


@router.delete("/knowledge-bases/{name}/documents/{document_id}", status_code=204)
async def delete_document(
    name: Name, document_id: DocumentId, platform: PlatformDep, tenant: Writer
) -> Response:
    await platform.tenant(tenant).kb.delete_document(name, document_id)
    return Response(status_code=204)


@router.get("/knowledge-bases/{name}/jobs")
async def list_jobs(name: Name, platform: PlatformDep, tenant: Reader) -> list[Job]:
    return await platform.tenant(tenant).kb.jobs(name)


@router.get("/knowledge-bases/{name}/jobs/{job_id}")
async def get_job(name: Name, job_id: JobId, platform: PlatformDep, tenant: Reader) -> Job:
    job = await platform.tenant(tenant).kb.job(job_id)
    if job.knowledge_base != name:
        raise NotFound(f"no job '{job_id}' in '{name}'")
    return job


@router.post("/search")
async def search(
    body: SearchRequest, request: Request, platform: PlatformDep, tenant: Reader
) -> SearchResult:
    return await platform.tenant(tenant).kb.search(body, request_id=billing_request_id(request))


@router.post("/knowledge-bases/{name}/search")
async def search_one(
    name: Name,
    request: Request,
    platform: PlatformDep,
    tenant: Reader,
    body: Annotated[dict[str, Any], Body()],
) -> SearchResult:
    """``/v1/search`` restricted to this knowledge base."""
    scoped = {**body, "knowledge_bases": [name]}
    return await platform.tenant(tenant).kb.search(scoped, request_id=billing_request_id(request))


@router.post("/ask")
async def ask(body: AskRequest, request: Request, platform: PlatformDep, tenant: Reader) -> Answer:
    return await platform.tenant(tenant).kb.ask(body, request_id=billing_request_id(request))


@router.post("/knowledge-bases/{name}/ask")
async def ask_one(
    name: Name,
    request: Request,
    platform: PlatformDep,
    tenant: Reader,
    body: Annotated[dict[str, Any], Body()],
) -> Answer:
    scoped = {**body, "knowledge_bases": [name]}
    return await platform.tenant(tenant).kb.ask(scoped, request_id=billing_request_id(request))
