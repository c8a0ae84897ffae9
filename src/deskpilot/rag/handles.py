"""One tenant's knowledge bases, as the Python API and the HTTP routes use them:
``platform.tenant(ctx).kb``. Each method is one unit of work."""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import PayloadTooLarge
from deskpilot.core.validation import parsed
from deskpilot.rag import answers, jobs, knowledge_bases, retrieval
from deskpilot.rag.config import limits
from deskpilot.rag.drafts import Upload
from deskpilot.rag.ingest import Progress, ingest
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import (
    Answer,
    AskRequest,
    Document,
    DocumentWithText,
    Ingested,
    Job,
    KnowledgeBase,
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
    SearchRequest,
    SearchResult,
    TextDocument,
)

MEDIA_TYPES = {"text": "text/plain", "markdown": "text/markdown", "html": "text/html"}
Body = TypeVar("Body", bound=BaseModel)


def _parsed(model: type[Body], body: Body | Mapping[str, Any]) -> Body:
    return parsed(model, body, detail="request refused")


def _within_upload_limit(tenant: TenantContext, uploads: Sequence[Upload]) -> None:
    allowed = limits(tenant).files_per_upload
    if len(uploads) > allowed:
        raise PayloadTooLarge(f"{len(uploads)} files in one upload; this plan allows {allowed}")


def text_upload(document: TextDocument) -> Upload:
    return Upload(
        content=document.text.encode(),
        media_type=MEDIA_TYPES[document.format],
        external_id=document.external_id,
        title=document.title,
        metadata=document.metadata,
        records=False,
    )


class KnowledgeHandle:
    def __init__(self, rt: RagRuntime, tenant: TenantContext) -> None:
        self._rt, self.context = rt, tenant

    async def create(self, body: KnowledgeBaseCreate | Mapping[str, Any]) -> KnowledgeBase:
        parsed = _parsed(KnowledgeBaseCreate, body)
        return await knowledge_bases.create(self._rt, parsed, tenant=self.context)

    async def list(self) -> builtins.list[KnowledgeBase]:
        return await knowledge_bases.list_all(self._rt, tenant=self.context)

    async def get(self, name: str) -> KnowledgeBase:
        return await knowledge_bases.get(self._rt, name, tenant=self.context)

    async def update(
        self, name: str, body: KnowledgeBaseUpdate | Mapping[str, Any]
    ) -> KnowledgeBase:
        parsed = _parsed(KnowledgeBaseUpdate, body)
        return await knowledge_bases.update(self._rt, name, parsed, tenant=self.context)

    async def delete(self, name: str) -> None:
        await knowledge_bases.delete(self._rt, name, tenant=self.context)

    async def ingest(
        self,
        name: str,
        uploads: Upload | Sequence[Upload],
        *,
        request_id: str | None = None,
        progress: Progress | None = None,
    ) -> builtins.list[Ingested]:
        """Store the uploads now (parsed, embedded, indexed); see ``deskpilot.rag.ingest``."""
        batch = [uploads] if isinstance(uploads, Upload) else list(uploads)
        _within_upload_limit(self.context, batch)
        return await ingest(
            self._rt,
            name,
            batch,
            tenant=self.context,
            request_id=request_id or secrets.token_hex(16),
            principal=self.context.principal,
            progress=progress,
        )

    async def add_text(
        self,
        name: str,
        document: TextDocument | Mapping[str, Any],
        *,
        request_id: str | None = None,
    ) -> Ingested:
        [result] = await self.ingest(
            name, text_upload(_parsed(TextDocument, document)), request_id=request_id
        )
        return result

    async def submit(
        self, name: str, uploads: Sequence[Upload], *, request_id: str | None = None
    ) -> Job:
        """Queue the uploads as a background job; ``job()`` reports its progress."""
        _within_upload_limit(self.context, uploads)
        return await jobs.submit(
            self._rt,
            name,
            uploads,
            tenant=self.context,
            request_id=request_id or secrets.token_hex(16),
        )

    async def job(self, job_id: str) -> Job:
        return await jobs.get(self._rt, job_id, tenant=self.context)

    async def jobs(self, name: str) -> builtins.list[Job]:
        return await jobs.list_jobs(self._rt, name, tenant=self.context)

    async def documents(
        self, name: str, *, after: str | None = None, limit: int = 100
    ) -> builtins.list[Document]:
        return await knowledge_bases.list_documents(
            self._rt, name, tenant=self.context, after=after, limit=limit
        )

    async def document(self, name: str, document_id: str) -> DocumentWithText:
        return await knowledge_bases.get_document(self._rt, name, document_id, tenant=self.context)

    async def chunks(self, name: str, document_id: str) -> builtins.list[Mapping[str, Any]]:
        return await knowledge_bases.document_chunks(
            self._rt, name, document_id, tenant=self.context
        )

    async def delete_document(self, name: str, document_id: str) -> None:
        await knowledge_bases.delete_document(self._rt, name, document_id, tenant=self.context)

    async def search(
        self, request: SearchRequest | Mapping[str, Any] | str, *, request_id: str | None = None
    ) -> SearchResult:
        body = {"query": request} if isinstance(request, str) else request
        return await retrieval.search(
            self._rt,
            _parsed(SearchRequest, body),
            tenant=self.context,
            request_id=request_id or secrets.token_hex(16),
        )

    async def ask(
        self, request: AskRequest | Mapping[str, Any] | str, *, request_id: str | None = None
    ) -> Answer:
        body = {"question": request} if isinstance(request, str) else request
        return await answers.ask(
            self._rt,
            _parsed(AskRequest, body),
            tenant=self.context,
            request_id=request_id or secrets.token_hex(16),
        )
