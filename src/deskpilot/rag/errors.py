"""What the knowledge bases refuse, each with its HTTP status (see ``deskpilot.core.errors``)."""

from __future__ import annotations

from deskpilot.core.errors import DeskpilotError, PayloadTooLarge, ValidationFailed


class UnsupportedMediaType(DeskpilotError):
    """The upload is not one of the formats ingestion reads (text, Markdown, HTML, PDF, DOCX,
    JSON, CSV)."""

    status, type, title = 415, "unsupported_media_type", "Unsupported document type"


class DocumentTooLarge(PayloadTooLarge):
    type, title = "document_too_large", "Document too large"


class CorruptDocument(ValidationFailed):
    """The file claims a format it does not hold (a truncated PDF, a DOCX that is not a zip)."""

    type, title = "corrupt_document", "The document cannot be read"


class EmptyDocument(ValidationFailed):
    """The document holds no text to index (an empty file, a scanned PDF without a text layer)."""

    type, title = "empty_document", "The document holds no text"
