"""What the knowledge bases need from an embedding model, whoever computes it (the bundled local
model, a provider's embeddings through the LLM gateway)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. ``embed`` is synchronous and CPU- or I/O-bound: callers run
    it in a worker thread, so an implementation is thread-safe."""

    @property
    def id(self) -> str:
        """Stable and versioned (``local/all-minilm-l6-v2-int8@1``); it changes whenever the
        vectors for the same text change, because vectors of two ids are never compared."""
        ...

    @property
    def dimensions(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Tokens of one text (as ``count_tokens`` counts them) that reach the model; the rest
        is cut off, so the chunker keeps chunks within it."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in the embedder's own tokens, without special tokens and without
        truncation."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """float32, shape ``(len(texts), dimensions)``, rows L2-normalised; a row depends only on
        its own text (not on the others in the call)."""
        ...
