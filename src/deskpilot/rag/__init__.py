"""Tenant knowledge bases (issue 6): ingestion, offline embeddings, hybrid retrieval, answers
with citations, evaluation.

``RagRuntime`` is built once per process by the ``Platform`` (``platform.rag``);
``KnowledgeHandle`` is one tenant's view (``platform.tenant(ctx).kb``): knowledge bases,
documents (``Upload``), background jobs, ``search`` and ``ask``. ``evaluate`` measures retrieval
on a BEIR-layout dataset. The bundled embedder and the document parsers are sub-packages
(``embedding``, ``parsing``).
"""

from deskpilot.rag.component import COMPONENT
from deskpilot.rag.config import RagConfig, RagLimits
from deskpilot.rag.drafts import Upload
from deskpilot.rag.embedders import Embedders
from deskpilot.rag.embedding import Embedder, LocalEmbedder
from deskpilot.rag.evaluation import MODES as EVAL_MODES
from deskpilot.rag.evaluation import Dataset, Report
from deskpilot.rag.evaluation import load as load_dataset
from deskpilot.rag.evaluation import run as evaluate_retrieval
from deskpilot.rag.handles import KnowledgeHandle
from deskpilot.rag.jobs import JobWorker
from deskpilot.rag.maintenance import unscoped_resume_dense_indexes
from deskpilot.rag.parsing import ACCEPTED, RecordOptions
from deskpilot.rag.rerank import Passage, Reranker, Rerankers
from deskpilot.rag.runtime import RagRuntime
from deskpilot.rag.schemas import (
    Answer,
    AskRequest,
    Citation,
    Document,
    DocumentWithText,
    Filters,
    Hit,
    Ingested,
    Job,
    JobStatus,
    KnowledgeBase,
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
    Outcome,
    SearchRequest,
    SearchResult,
    TextDocument,
)

__all__ = [
    "ACCEPTED",
    "COMPONENT",
    "EVAL_MODES",
    "Answer",
    "AskRequest",
    "Citation",
    "Dataset",
    "Document",
    "DocumentWithText",
    "Embedder",
    "Embedders",
    "Filters",
    "Hit",
    "Ingested",
    "Job",
    "JobStatus",
    "JobWorker",
    "KnowledgeBase",
    "KnowledgeBaseCreate",
    "KnowledgeBaseUpdate",
    "KnowledgeHandle",
    "LocalEmbedder",
    "Outcome",
    "Passage",
    "RagConfig",
    "RagLimits",
    "RagRuntime",
    "RecordOptions",
    "Report",
    "Reranker",
    "Rerankers",
    "SearchRequest",
    "SearchResult",
    "TextDocument",
    "Upload",
    "evaluate_retrieval",
    "load_dataset",
    "unscoped_resume_dense_indexes",
]
