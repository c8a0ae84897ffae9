"""PDF text with ``pypdf``: one pass over the pages, paragraphs from blank lines, each block
tagged with its 1-based page so a citation can say "page 12".

pypdf (7.x) bounds its own decompression, page-tree walk and content-stream parsing
(``pypdf.Configuration``), but on a crafted file it can still raise nearly any exception
(``KeyError``, ``TypeError``, ``RecursionError``, ...); every one of them means the same to a
tenant, "this PDF cannot be read", so all are ``CorruptDocument``. The declared page count is
checked before the page tree is walked, so a file claiming millions of pages is refused cheaply.

pypdf logs what it repairs in malformed files at WARNING (and, for odd font encodings, ERROR).
Those records describe the upload, not a fault of ours, and would read as incidents in our
logs, so the ``pypdf`` logger is raised to CRITICAL unless an operator configured it.
"""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader
from pypdf.generic import DictionaryObject

from deskpilot.core.errors import DeskpilotError
from deskpilot.rag.errors import CorruptDocument, DocumentTooLarge
from deskpilot.rag.parsing.document import (
    DocumentBuilder,
    Format,
    ParsedDocument,
    ParseLimits,
    clean_title,
    normalise_text,
)
from deskpilot.rag.parsing.text import add_paragraphs

_SCANNED = (
    "The PDF holds no text that can be extracted. It may be a scan without a text layer: "
    "run it through OCR (most scanners and PDF tools can) and upload it again."
)


def parse_pdf(content: bytes, limits: ParseLimits) -> ParsedDocument:
    _quiet_pypdf()
    try:
        return _read(content, limits)
    except DeskpilotError:
        raise
    except Exception as exc:  # pypdf raises anything on crafted files; see the module docstring
        raise CorruptDocument(
            "The PDF cannot be read: it is damaged, truncated or not a valid PDF."
        ) from exc


def _quiet_pypdf() -> None:
    logger = logging.getLogger("pypdf")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


def _read(content: bytes, limits: ParseLimits) -> ParsedDocument:
    reader = PdfReader(io.BytesIO(content), strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise CorruptDocument(
            "The PDF is protected by a password; remove the protection and upload it again."
        )
    _check_pages(_declared_pages(reader), limits)
    page_count = len(reader.pages)
    _check_pages(page_count, limits)
    builder = DocumentBuilder(Format.PDF, limits)
    for number, page in enumerate(reader.pages, start=1):
        text = normalise_text(page.extract_text() or "")
        add_paragraphs(builder, text, page=number)
    builder.metadata["page_count"] = page_count
    title, author = _info(reader)
    if author:
        builder.metadata["author"] = author
    return builder.build(fallback_title=title, empty_reason=_SCANNED)


def _declared_pages(reader: PdfReader) -> int:
    pages = reader.root_object.get("/Pages")
    pages = pages.get_object() if pages is not None else None
    count = pages.get("/Count") if isinstance(pages, DictionaryObject) else None
    return int(count) if isinstance(count, int) else 0


def _check_pages(pages: int, limits: ParseLimits) -> None:
    if pages > limits.max_pages:
        raise DocumentTooLarge(
            f"The PDF has {pages:,} pages; at most {limits.max_pages:,} are accepted. "
            "Split it into smaller files."
        )


def _info(reader: PdfReader) -> tuple[str | None, str | None]:
    info = reader.metadata
    if info is None:
        return None, None
    title, author = info.title, info.author
    return (
        title if isinstance(title, str) else None,
        clean_title(author) if isinstance(author, str) else None,
    )
