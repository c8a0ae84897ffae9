"""Embedding models for the knowledge bases: the ``Embedder`` protocol and the bundled offline
model, ``LocalEmbedder`` (all-MiniLM-L6-v2, int8, ONNX Runtime)."""

from deskpilot.rag.embedding.artifacts import EmbeddingModelUnavailable
from deskpilot.rag.embedding.local import EMBEDDER_ID, LocalEmbedder
from deskpilot.rag.embedding.protocol import Embedder, Vectors

__all__ = ["EMBEDDER_ID", "Embedder", "EmbeddingModelUnavailable", "LocalEmbedder", "Vectors"]
