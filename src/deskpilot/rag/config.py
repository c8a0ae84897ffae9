"""The knowledge bases' configuration: the tenant-editable ``rag`` section (chunking, embedder,
retrieval, answers) and the operator's ``rag_limits``. A knowledge base stores overrides of the
``rag`` section, layered on top: platform < tier < tenant < knowledge base."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deskpilot.core.component import ConfigSection
from deskpilot.core.config import deep_merge
from deskpilot.core.context import TenantContext
from deskpilot.core.errors import ValidationFailed
from deskpilot.core.validation import field_errors

LOCAL_EMBEDDER = "local"
GATEWAY_EMBEDDER_PREFIX = "gateway:"  # "gateway:<model alias>": the tenant's LLM gateway routes it

Language = Literal[
    "english", "danish", "dutch", "finnish", "french", "german", "italian", "norwegian",
    "portuguese", "spanish", "swedish",
]  # fmt: skip


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chunking(_Frozen):
    """Sizes in the local model's WordPiece tokens. The default leaves room for the title and
    section each chunk is embedded with inside the local model's 126-token window (the length
    it was trained on): a longer chunk's tail is searchable by keyword only."""

    max_tokens: int = Field(default=100, ge=32, le=512, description="Tokens per chunk (cap).")
    overlap_tokens: int = Field(default=16, ge=0, le=256)
    min_tokens: int = Field(default=16, ge=0, le=256)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class Retrieval(_Frozen):
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    top_k: int = Field(default=8, ge=1, le=100)
    candidates: int = Field(
        default=50, ge=10, le=500, description="Candidates each leg brings to the fusion."
    )
    dense_weight: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="Hybrid score = w * cosine + (1 - w) * BM25 / the query's BM25 maximum.",
    )
    title_weight: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="How far a document title's closer match lifts its chunks' cosine (0: off).",
    )
    reranker: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="A reranker the deployment registered (platform.rag.rerankers); None: off.",
    )
    rerank_candidates: int = Field(default=20, ge=1, le=100)
    language: Language = Field(default="english", description="BM25 stemming and stop words.")
    bm25_k1: float = Field(default=1.2, ge=0, le=3)
    bm25_b: float = Field(default=0.75, ge=0, le=1)


class Answers(_Frozen):
    model_alias: str | None = Field(
        default=None, description="Gateway alias for answers; None: the tenant's default alias."
    )
    passages: int = Field(default=8, ge=1, le=20)
    max_output_tokens: int = Field(default=512, ge=16, le=4096)


class RagConfig(_Frozen):
    """Knowledge bases: how documents are chunked and embedded, how retrieval ranks and how
    answers are written. A knowledge base can override any of it."""

    embedder: str = Field(
        default=LOCAL_EMBEDDER,
        pattern=r"^(local|gateway:[A-Za-z0-9._:/-]{1,128})$",
        description="'local' (bundled, offline) or 'gateway:<model alias>' (metered).",
    )
    chunking: Chunking = Chunking()
    retrieval: Retrieval = Retrieval()
    answers: Answers = Answers()


class RagLimits(_Frozen):
    """Operator-managed limits of the knowledge bases (documents and bytes stored are quotas)."""

    knowledge_bases: int = Field(default=20, ge=0, le=10_000)
    upload_bytes: int = Field(
        default=10 * 2**20,
        ge=1024,
        le=2**31,
        description="Largest file (HTTP bodies are also capped by DESKPILOT_MAX_BODY_BYTES).",
    )
    files_per_upload: int = Field(default=1000, ge=1, le=100_000)
    inline_documents: int = Field(
        default=20,
        ge=0,
        le=10_000,
        description="Uploads with more documents than this run as a background job.",
    )


SECTIONS = (
    ConfigSection("rag", RagConfig, tenant_editable=True, description=RagConfig.__doc__ or ""),
    ConfigSection(
        "rag_limits", RagLimits, tenant_editable=False, description=RagLimits.__doc__ or ""
    ),
)


def tenant_rag(tenant: TenantContext) -> RagConfig:
    return tenant.parsed("rag", RagConfig)


def limits(tenant: TenantContext) -> RagLimits:
    return tenant.parsed("rag_limits", RagLimits)


def kb_config(tenant: TenantContext, overrides: Mapping[str, Any]) -> RagConfig:
    """The tenant's ``rag`` section with a knowledge base's overrides on top."""
    if not overrides:
        return tenant_rag(tenant)
    return validated(deep_merge(dict(tenant.section("rag")), overrides))


def validated(document: Mapping[str, Any], prefix: str = "config") -> RagConfig:
    try:
        return RagConfig.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed(
            "knowledge base configuration refused", field_errors(exc, prefix=prefix)
        ) from None
