"""The bundled model's files: read from the package directory and checked against the SHA-256
recorded here before use. Nothing is ever downloaded; an altered or truncated file is refused,
because it would silently give vectors that no longer match the ones already stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from deskpilot.core.errors import DeskpilotError

MODEL_DIR = Path(__file__).resolve().parent / "model"


@dataclass(frozen=True, slots=True)
class ModelFile:
    name: str
    sha256: str


# Printed by scripts/build_local_embedder.py; a rebuild that changes them changes the vectors,
# so LocalEmbedder's id gets a new version at the same time.
ONNX_MODEL = ModelFile(
    "all-minilm-l6-v2-int8.onnx", "4d442f71196de7af5cc9c082010f7bbca60912abbf0876c1cae3555e3d387bac"
)
TOKENIZER = ModelFile(
    "tokenizer.json", "b2671b6b396976e3f5aef2c69ea482aa60a2a571933664ab36f352d655ecea29"
)


# Named for what happened, like the errors of core/errors.py.
class EmbeddingModelUnavailable(DeskpilotError):  # noqa: N818
    """The installation is broken: the bundled model is missing or is not the one this version
    of deskpilot was built with."""

    type, title = "embedding_model_unavailable", "The local embedding model cannot be used"


def read_verified(directory: Path, file: ModelFile) -> bytes:
    """The file's bytes, once their SHA-256 matched (hashing the bytes that are then used leaves
    no window for the file to change in between)."""
    path = directory / file.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EmbeddingModelUnavailable(
            f"the local embedding model file {path} cannot be read ({exc.strerror or exc}); "
            "reinstall deskpilot"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != file.sha256:
        raise EmbeddingModelUnavailable(
            f"the local embedding model file {path} has SHA-256 {digest}, expected "
            f"{file.sha256}: it was altered or truncated; reinstall deskpilot"
        )
    return data
