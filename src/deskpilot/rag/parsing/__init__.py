"""Uploaded files to documents, and documents to retrieval chunks (issue 6).

``detect_format`` names the format of an upload; ``parse`` reads it into a ``ParsedDocument``
(one normalised text, structural ``Block``s over it with exact offsets, a title, small
metadata); ``split_records`` reads a JSON or CSV export as one document per record;
``chunk_document`` cuts a document into ``ChunkSpan``s that respect its structure, sized by an
injected token counter (``estimate_tokens`` is a cheap stand-in).

Every refusal is one of ``deskpilot.rag.errors``: ``UnsupportedMediaType``,
``DocumentTooLarge``, ``CorruptDocument``, ``EmptyDocument``, whatever the bytes. Parsing is
CPU-bound and synchronous: run it off the event loop (a worker thread or process).
"""

from deskpilot.rag.parsing.chunking import (
    ChunkingConfig,
    ChunkSpan,
    TokenCounter,
    chunk_document,
    estimate_tokens,
)
from deskpilot.rag.parsing.document import (
    Block,
    BlockKind,
    Format,
    Metadata,
    MetadataValue,
    ParsedDocument,
    ParseLimits,
)
from deskpilot.rag.parsing.formats import ACCEPTED, detect_format
from deskpilot.rag.parsing.records import Record, RecordOptions, split_records
from deskpilot.rag.parsing.service import BUILTIN_PARSERS, DocumentParser, parse

__all__ = [
    "ACCEPTED",
    "BUILTIN_PARSERS",
    "Block",
    "BlockKind",
    "ChunkSpan",
    "ChunkingConfig",
    "DocumentParser",
    "Format",
    "Metadata",
    "MetadataValue",
    "ParseLimits",
    "ParsedDocument",
    "Record",
    "RecordOptions",
    "TokenCounter",
    "chunk_document",
    "detect_format",
    "estimate_tokens",
    "parse",
    "split_records",
]
