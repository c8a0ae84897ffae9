"""Retrieval evaluation on a BEIR-layout dataset (``corpus.jsonl``, ``queries.jsonl``,
``qrels/*.tsv``): nDCG@10, Recall@10 and MRR@10 of keyword, dense and hybrid retrieval, at
document level, through the same ingestion and search a tenant uses.

``deskpilot eval retrieval DIR`` runs it in a scratch tenant; vendors run it on their own data.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskpilot.core.errors import DeskpilotError, FieldError, ValidationFailed
from deskpilot.rag.drafts import Upload
from deskpilot.rag.handles import KnowledgeHandle

K = 10
MODES = ("keyword", "dense", "hybrid")
INGEST_BATCH = 64
CHUNKS_PER_QUERY = 50  # chunks asked for, so that ten distinct documents remain


@dataclass(frozen=True, slots=True)
class Dataset:
    corpus: list[dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass
class Report:
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    docs_per_s: float = 0.0
    chunks_per_s: float = 0.0
    query_p50_ms: float = 0.0
    documents: int = 0
    chunks: int = 0
    queries: int = 0
    skipped: list[str] = field(default_factory=list)  # corpus ids ingestion refused

    def as_json(self) -> dict[str, Any]:
        return {
            **{mode: self.metrics[mode] for mode in MODES if mode in self.metrics},
            "docs_per_s": round(self.docs_per_s, 1),
            "chunks_per_s": round(self.chunks_per_s, 1),
            "query_p50_ms": round(self.query_p50_ms, 2),
            "documents": self.documents,
            "chunks": self.chunks,
            "queries": self.queries,
            "skipped": len(self.skipped),
        }


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise _refused(path, f"line {number} is not JSON") from None
    return rows


def _refused(path: Path, why: str) -> ValidationFailed:
    return ValidationFailed("dataset refused", (FieldError(str(path), why),))


def load(directory: Path, *, queries: Path | None = None, qrels: Path | None = None) -> Dataset:
    corpus_file = directory / "corpus.jsonl"
    queries_file = queries or directory / "queries.jsonl"
    qrels_file = qrels or _qrels_file(directory)
    for path in (corpus_file, queries_file, qrels_file):
        if not path.is_file():
            raise _refused(path, "missing")
    judged: dict[str, dict[str, int]] = {}
    for number, line in enumerate(qrels_file.read_text("utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or (number == 1 and not parts[-1].lstrip("-").isdigit()):
            continue  # blank, or the header row
        if len(parts) < 3:
            raise _refused(qrels_file, f"line {number}: query-id corpus-id score expected")
        judged.setdefault(parts[0], {})[parts[1]] = int(parts[-1])
    asked = {str(q["_id"]): str(q["text"]) for q in _jsonl(queries_file)}
    return Dataset(
        corpus=_jsonl(corpus_file),
        queries={q: text for q, text in asked.items() if q in judged},
        qrels=judged,
    )


def _qrels_file(directory: Path) -> Path:
    folder = directory / "qrels"
    for name in ("dev.tsv", "test.tsv"):
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.tsv")) if folder.is_dir() else []
    return found[0] if found else folder / "dev.tsv"


def ndcg(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K) -> float:
    gains = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return gains / best if best else 0.0


def recall(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr(ranked: Sequence[str], relevant: Mapping[str, int], k: int = K) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1 / (i + 1)
    return 0.0


def _upload(doc: Mapping[str, Any]) -> Upload:
    return Upload(
        content=str(doc.get("text", "")).encode(),
        media_type="text/plain",
        external_id=str(doc["_id"]),
        title=str(doc.get("title") or "") or None,
        records=False,
    )


async def _ingest(
    kb: KnowledgeHandle, name: str, batch: Sequence[Mapping[str, Any]], report: Report
) -> int:
    """The batch's chunks; a batch a document of which is refused (an upload is all or
    nothing) goes again one document at a time, and the refused ones are reported skipped."""
    try:
        return sum(r.chunks for r in await kb.ingest(name, [_upload(d) for d in batch]))
    except DeskpilotError as exc:
        if exc.status >= 500 or exc.status == 429:
            raise
    chunks = 0
    for document in batch:
        try:
            chunks += sum(r.chunks for r in await kb.ingest(name, _upload(document)))
        except DeskpilotError as exc:
            if exc.status >= 500 or exc.status == 429:
                raise
            report.skipped.append(str(document["_id"]))
    return chunks


async def run(
    kb: KnowledgeHandle,
    name: str,
    dataset: Dataset,
    *,
    settle: Callable[[], Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Report:
    """Ingest the corpus into knowledge base ``name`` (empty), then run every query in every
    mode. ``settle`` is awaited between the two (background work of the ingestion)."""
    report = Report(documents=len(dataset.corpus), queries=len(dataset.queries))
    started = time.perf_counter()
    for start in range(0, len(dataset.corpus), INGEST_BATCH):
        batch = [d for d in dataset.corpus[start : start + INGEST_BATCH] if d.get("text")]
        report.chunks += await _ingest(kb, name, batch, report)
        if progress:
            progress("ingest", min(start + INGEST_BATCH, len(dataset.corpus)), len(dataset.corpus))
    seconds = time.perf_counter() - started
    report.docs_per_s = len(dataset.corpus) / seconds if seconds else 0.0
    report.chunks_per_s = report.chunks / seconds if seconds else 0.0
    if settle is not None:
        await settle()
    hybrid_ms: list[float] = []
    for mode in MODES:
        scores: dict[str, list[float]] = {"ndcg@10": [], "recall@10": [], "mrr@10": []}
        for number, (query_id, text) in enumerate(dataset.queries.items(), 1):
            began = time.perf_counter()
            found = await kb.search(
                {"query": text, "knowledge_bases": [name], "top_k": CHUNKS_PER_QUERY, "mode": mode}
            )
            if mode == "hybrid":
                hybrid_ms.append((time.perf_counter() - began) * 1000)
            ranked = list(dict.fromkeys(h.external_id or h.document_id for h in found.hits))
            relevant = dataset.qrels.get(query_id, {})
            scores["ndcg@10"].append(ndcg(ranked, relevant))
            scores["recall@10"].append(recall(ranked, relevant))
            scores["mrr@10"].append(mrr(ranked, relevant))
            if progress:
                progress(mode, number, len(dataset.queries))
        report.metrics[mode] = {m: round(statistics.fmean(v), 4) for m, v in scores.items() if v}
    report.query_p50_ms = statistics.median(hybrid_ms) if hybrid_ms else 0.0
    return report
