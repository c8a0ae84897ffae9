"""From an upload to documents ready to embed: detect, parse (or split records), chunk, analyse.
Synchronous and CPU-bound; the ingestion runs it in a worker thread. Every refusal is one of
``deskpilot.rag.errors`` and happens before anything is stored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from deskpilot.rag.analysis import Analyzer
from deskpilot.rag.config import RagConfig
from deskpilot.rag.errors import EmptyDocument
from deskpilot.rag.parsing import (
    ChunkingConfig,
    Format,
    MetadataValue,
    ParsedDocument,
    ParseLimits,
    RecordOptions,
    TokenCounter,
    chunk_document,
    detect_format,
    parse,
    split_records,
)
from deskpilot.rag.store import PreparedChunk, PreparedDocument

RECORD_FORMATS = frozenset({Format.JSON, Format.CSV})
TITLE_CHARS = 150  # of a title, in the text a chunk is embedded and indexed with


@dataclass(frozen=True, slots=True)
class Upload:
    """One file (or text) to ingest. JSON and CSV files are read as records, one document
    each, unless ``records`` is False."""

    content: bytes
    filename: str | None = None
    media_type: str | None = None
    external_id: str | None = None
    title: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    records: RecordOptions | bool = True


@dataclass(frozen=True, slots=True)
class Draft:
    """A parsed, chunked and analysed document, not yet embedded."""

    external_id: str | None
    title: str | None
    source: str | None
    format: str
    text: str
    metadata: Mapping[str, MetadataValue]
    upload_bytes: int
    content_hash: str
    chunks: tuple[PreparedChunk, ...]

    def embedding_inputs(self) -> list[str]:
        return [context_text(self.title, c.headings, c.text) for c in self.chunks]

    def prepared(
        self, embeddings: np.ndarray, title_embedding: np.ndarray | None, tokens: int
    ) -> PreparedDocument:
        return PreparedDocument(
            external_id=self.external_id,
            title=self.title,
            source=self.source,
            format=self.format,
            content_hash=self.content_hash,
            text=self.text,
            metadata=self.metadata,
            upload_bytes=self.upload_bytes,
            chunks=self.chunks,
            embeddings=embeddings,
            title_embedding=title_embedding,
            embedding_tokens=tokens,
        )


def context_text(title: str | None, headings: Sequence[str], text: str) -> str:
    """What a chunk is embedded and indexed as: its document's title and section, then it.
    A passage rarely repeats what its heading says; with it, "Reset the token" under "VPN"
    matches a question about the VPN."""
    parts = [title[:TITLE_CHARS]] if title else []
    trail = [h for h in headings if h and h != title]
    if trail:
        parts.append(" > ".join(trail[-2:]))
    parts.append(text)
    return "\n".join(parts)


def drafts_of(
    upload: Upload,
    config: RagConfig,
    count_tokens: TokenCounter,
    analyzer: Analyzer,
    limits: ParseLimits,
) -> list[Draft]:
    fmt = detect_format(
        filename=upload.filename, media_type=upload.media_type, content=upload.content
    )
    source = PurePath(upload.filename).name if upload.filename else None
    chunking = ChunkingConfig(
        max_tokens=config.chunking.max_tokens,
        overlap_tokens=config.chunking.overlap_tokens,
        min_tokens=config.chunking.min_tokens,
    )
    if fmt in RECORD_FORMATS and upload.records is not False:
        options = upload.records if isinstance(upload.records, RecordOptions) else RecordOptions()
        records = split_records(upload.content, fmt, options, limits=limits)
        share = max(1, len(upload.content) // max(1, len(records)))
        return [
            _draft(
                record.document,
                external_id=record.external_id,
                title=record.title,
                source=source,
                metadata={**upload.metadata, **record.metadata},
                upload_bytes=share,
                chunking=chunking,
                count_tokens=count_tokens,
                analyzer=analyzer,
            )
            for record in records
        ]
    document = parse(upload.content, fmt, limits=limits)
    return [
        _draft(
            document,
            external_id=upload.external_id or source,
            title=upload.title or document.title,
            source=source,
            metadata={**document.metadata, **upload.metadata},
            upload_bytes=len(upload.content),
            chunking=chunking,
            count_tokens=count_tokens,
            analyzer=analyzer,
        )
    ]


def _draft(
    document: ParsedDocument,
    *,
    external_id: str | None,
    title: str | None,
    source: str | None,
    metadata: Mapping[str, MetadataValue],
    upload_bytes: int,
    chunking: ChunkingConfig,
    count_tokens: TokenCounter,
    analyzer: Analyzer,
) -> Draft:
    spans = chunk_document(document, chunking, count_tokens)
    if not spans:
        raise EmptyDocument("the document holds no text to index")
    chunks = tuple(
        PreparedChunk(
            ordinal=span.ordinal,
            text=span.text,
            char_start=span.start,
            char_end=span.end,
            headings=span.headings,
            page_start=span.page_start,
            page_end=span.page_end,
            tokens=span.tokens,
            terms=analyzer.frequencies(context_text(title, span.headings, span.text)),
        )
        for span in spans
    )
    return Draft(
        external_id=external_id[:512] if external_id else None,
        title=title,
        source=source,
        format=document.format.value,
        text=document.text,
        metadata=dict(metadata),
        upload_bytes=upload_bytes,
        content_hash=content_hash(title, document.text, metadata),
        chunks=chunks,
    )


def content_hash(title: str | None, text: str, metadata: Mapping[str, MetadataValue]) -> str:
    """Equal for the same content whatever file it came in: dedup is by what is indexed."""
    canonical = json.dumps([title, text, dict(sorted(metadata.items()))], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
