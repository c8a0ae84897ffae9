"""What the knowledge bases take and return (Python API and HTTP alike)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KB_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}[a-z0-9]$|^[a-z0-9]$"
DOCUMENT_ID = r"^doc_[0-9a-f]{16}$"
JOB_ID = r"^job_[0-9a-f]{16}$"
Mode = Literal["hybrid", "dense", "keyword"]
MetadataValue = str | int | float | bool


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class KnowledgeBaseCreate(_In):
    name: str = Field(pattern=KB_NAME, description="Unique per tenant, e.g. 'runbooks'.")
    description: str = Field(default="", max_length=2000)
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the tenant's 'rag' configuration for this knowledge base.",
    )


class KnowledgeBaseUpdate(_In):
    description: str | None = Field(default=None, max_length=2000)
    config: dict[str, Any] | None = Field(
        default=None, description="JSON merge patch onto this knowledge base's overrides."
    )


class KnowledgeBase(_Out):
    name: str
    description: str
    config: dict[str, Any] = Field(description="This knowledge base's own overrides.")
    embedder: str
    dimensions: int | None
    document_count: int
    chunk_count: int
    stored_bytes: int
    dense_index: Literal["none", "building", "ready", "failed"]
    created_at: datetime
    updated_at: datetime


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # same external id, new content: its chunks were swapped atomically
    UNCHANGED = "unchanged"  # same content already stored (content-hash dedup)


class Document(_Out):
    document_id: str
    knowledge_base: str
    external_id: str | None
    title: str | None
    source: str | None
    format: str
    metadata: dict[str, MetadataValue]
    chunk_count: int
    upload_bytes: int
    stored_bytes: int
    version: int
    content_hash: str
    created_at: datetime
    updated_at: datetime


class DocumentWithText(Document):
    text: str = Field(description="The extracted text that chunk offsets point into.")


class Ingested(_Out):
    document_id: str
    external_id: str | None
    title: str | None
    outcome: Outcome
    chunks: int
    embedding_tokens: int


class TextDocument(_In):
    """A document given as text (the Python API and ``POST .../documents`` with JSON)."""

    text: str = Field(min_length=1, max_length=5_000_000)
    title: str | None = Field(default=None, max_length=1000)
    external_id: str | None = Field(default=None, min_length=1, max_length=512)
    format: Literal["text", "markdown", "html"] = "text"
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, max_length=64)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        for key, item in value.items():
            if not 0 < len(key) <= 64:
                raise ValueError("metadata keys must be 1..64 characters")
            if isinstance(item, str) and len(item) > 1000:
                raise ValueError(f"metadata value of {key!r} is longer than 1000 characters")
        return value


class Filters(_In):
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict, description="Documents whose metadata holds all these values."
    )
    document_ids: list[str] | None = Field(default=None, max_length=1000)
    external_ids: list[str] | None = Field(default=None, max_length=1000)


class SearchRequest(_In):
    query: str = Field(min_length=1, max_length=4000)
    knowledge_bases: list[str] | None = Field(
        default=None, max_length=20, description="Names; none: every knowledge base."
    )
    top_k: int | None = Field(default=None, ge=1, le=100)
    mode: Mode | None = None
    filters: Filters = Filters()


class Hit(_Out):
    knowledge_base: str
    document_id: str
    external_id: str | None
    title: str | None
    chunk: int
    text: str
    char_start: int
    char_end: int
    headings: list[str]
    page_start: int | None
    page_end: int | None
    score: float
    dense: float | None = Field(description="Cosine similarity (title-lifted), if scored.")
    keyword: float | None = Field(description="BM25 over the query's BM25 maximum, if scored.")
    rerank: float | None = Field(default=None, description="The reranker's score, if one ran.")


class SearchResult(_Out):
    request_id: str
    mode: Mode
    hits: list[Hit]
    took_ms: float


class AskRequest(_In):
    question: str = Field(min_length=1, max_length=4000)
    knowledge_bases: list[str] | None = Field(default=None, max_length=20)
    top_k: int | None = Field(default=None, ge=1, le=20)
    filters: Filters = Filters()
    model: str | None = Field(default=None, max_length=128, description="Gateway alias.")


class Citation(_Out):
    id: int = Field(description="The [n] marker used in the answer.")
    knowledge_base: str
    document_id: str
    external_id: str | None
    title: str | None
    chunk: int
    char_start: int
    char_end: int
    page_start: int | None
    page_end: int | None
    quote: str


class Answer(_Out):
    request_id: str
    answer: str
    kind: Literal["generated", "extractive"]
    note: str | None = Field(default=None, description="Why the answer is extractive, when it is.")
    citations: list[Citation]
    model: str | None = None
    deployment: str | None = None


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every item failed
    PARTIAL = "partial"  # finished, some items failed


class JobItem(_Out):
    item: int
    filename: str | None
    status: str
    documents: list[dict[str, Any]]
    error: dict[str, Any] | None


class Job(_Out):
    job_id: str
    knowledge_base: str
    status: JobStatus
    total: int
    succeeded: int
    unchanged: int
    failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    items: list[JobItem] | None = None
