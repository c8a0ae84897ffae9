"""The bundled embedder: all-MiniLM-L6-v2 (384 dimensions), int8, on ONNX Runtime's CPU kernels.
Offline (the model ships in ``model/``), no torch.

How it runs, and why (bench/embedder.py: StackFAQ, 719 texts of ~110 tokens, on this project's
2-core machine with AVX512-VNNI and AMX; ONNX Runtime 1.32):

* One text per model call, unpadded. ONNX Runtime's dynamic int8 quantises a call's activations
  with one scale for the whole call, so in a batch a text's vector moves with its neighbours (by
  up to 0.013 in cosine, measured); alone, a row depends on its text only, and neither padding
  nor an attention mask is computed (the mask cost 3-5%). Batches were no faster per text.
* Texts run in parallel on ``threads`` workers, each call single-threaded, longest text first:
  278 texts/s on 2 idle cores against 205 with one call at a time on two intra-op threads
  (which synchronise at every one of the ~60 operators), and 137 against 63 while another
  process kept one core busy.
* ONNX Runtime's ``SkipLayerNormFusion`` is turned off: its fused kernel takes ~5 ns per element
  against ~0.7 for ``Add`` + ``LayerNormalization``, 20% of the whole model's time.

Texts are cut to 128 model positions, [CLS] and [SEP] included, i.e. ``max_tokens`` = 126 of
the tokens ``count_tokens`` counts: all-MiniLM-L6-v2 was trained on sequences of at most 128
tokens, and the knowledge bases' chunks are sized to fit (``rag.chunking.max_tokens``). Against
sentence-transformers' 256 it measured better, not worse (StackFAQ dense nDCG@10 0.9525 vs
0.9469; hybrid through the platform 0.9664 vs 0.9667) and 1.24x faster. Throughput is ~30,000
model positions per second on 2 cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]  # ships no type information
from tokenizers import Tokenizer

from deskpilot.rag.embedding.artifacts import MODEL_DIR, ONNX_MODEL, TOKENIZER, read_verified
from deskpilot.rag.embedding.protocol import Vectors

EMBEDDER_ID = "local/all-minilm-l6-v2-int8@1"
DIMENSIONS = 384
SEQUENCE_LENGTH = 128  # model positions per text, [CLS] and [SEP] included
SPECIAL_TOKENS = 2
_SLOW_FUSIONS = ("SkipLayerNormFusion",)


@dataclass(frozen=True, slots=True)
class _Model:
    session: ort.InferenceSession
    truncating: Tokenizer  # what reaches the model: [CLS], up to 126 tokens, [SEP]
    counting: Tokenizer  # whole texts, no special tokens
    workers: ThreadPoolExecutor | None  # None: one thread, calls run in the caller's


class LocalEmbedder:
    """Thread-safe; loads on first use (or ``load()``), once. ``threads``: texts computed at
    once, one core each (None: every core this process may use)."""

    _shared: ClassVar[LocalEmbedder | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, threads: int | None = None, model_dir: Path = MODEL_DIR) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self._threads = threads or available_cores()
        self._model_dir = model_dir
        self._lock = threading.Lock()
        self._model: _Model | None = None
        self._load_seconds: float | None = None

    @classmethod
    def shared(cls, *, threads: int | None = None) -> LocalEmbedder:
        """The process's instance (the first call's ``threads`` wins), so that the model is
        held once however many knowledge bases use it."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls(threads=threads)
            return cls._shared

    @property
    def id(self) -> str:
        return EMBEDDER_ID

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    @property
    def max_tokens(self) -> int:
        return SEQUENCE_LENGTH - SPECIAL_TOKENS

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def load_seconds(self) -> float | None:
        """How long loading took (reading and verifying the files, building the session); None
        until loaded."""
        return self._load_seconds

    def load(self) -> None:
        """Load now rather than on first use (startup, benchmarks)."""
        self._loaded()

    def close(self) -> None:
        """Stop the worker threads (once no call is running); the next call loads again."""
        with self._lock:
            model, self._model = self._model, None
        if model is not None and model.workers is not None:
            model.workers.shutdown(wait=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encodings = self._loaded().counting.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return vectors
        model = self._loaded()
        token_ids = [
            np.asarray([encoding.ids], dtype=np.int32)
            for encoding in model.truncating.encode_batch(list(texts))
        ]
        # Longest first: the workers then finish at about the same time.
        order = sorted(range(len(token_ids)), key=lambda i: -token_ids[i].shape[1])
        run = partial(_embed_one, model.session)
        inputs = (token_ids[i] for i in order)
        rows: Iterable[Vectors]
        if model.workers is None or len(order) == 1:
            rows = map(run, inputs)
        else:
            rows = model.workers.map(run, inputs)
        for index, row in zip(order, rows, strict=True):
            vectors[index] = row
        return vectors

    def _loaded(self) -> _Model:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model = _load(self._model_dir, self._threads)
                self._load_seconds = time.perf_counter() - started
            return self._model


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _load(model_dir: Path, threads: int) -> _Model:
    onnx_bytes = read_verified(model_dir, ONNX_MODEL)
    tokenizer_json = read_verified(model_dir, TOKENIZER).decode()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(
        onnx_bytes,
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(_SLOW_FUSIONS),
    )
    truncating = Tokenizer.from_str(tokenizer_json)
    truncating.no_padding()
    truncating.enable_truncation(SEQUENCE_LENGTH)
    counting = Tokenizer.from_str(tokenizer_json)
    counting.no_padding()
    counting.no_truncation()
    workers = (
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="local-embedder")
        if threads > 1
        else None
    )
    return _Model(session, truncating, counting, workers)


def _embed_one(session: ort.InferenceSession, token_ids: npt.NDArray[np.int32]) -> Vectors:
    outputs = session.run(None, {"input_ids": token_ids})
    vector: Vectors = outputs[0][0]
    return vector
