"""Which parser reads an upload: from its media type, its file name, or its first bytes.

Clients are sloppy about media types (browsers send ``text/plain`` for Markdown and CSV,
``application/vnd.ms-excel`` for CSV on Windows, ``application/octet-stream`` for anything
unknown), so a *weak* declared type yields to a specific file extension. A declared format
that the bytes contradict (``application/pdf`` without ``%PDF-``) is refused as corrupt rather
than guessed at: it is usually a truncated or mislabelled upload the tenant should know about.
"""

from __future__ import annotations

import io
import re
import zipfile
from types import MappingProxyType

from deskpilot.rag.errors import CorruptDocument, EmptyDocument, UnsupportedMediaType
from deskpilot.rag.parsing.document import Format

ACCEPTED = "plain text, Markdown, HTML, PDF, Word (.docx), JSON or CSV"

MEDIA_TYPES = MappingProxyType(
    {
        "text/plain": Format.TEXT,
        "text/markdown": Format.MARKDOWN,
        "text/x-markdown": Format.MARKDOWN,
        "text/html": Format.HTML,
        "application/xhtml+xml": Format.HTML,
        "application/pdf": Format.PDF,
        "application/x-pdf": Format.PDF,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": Format.DOCX,
        "application/json": Format.JSON,
        "text/json": Format.JSON,
        "application/x-ndjson": Format.JSON,
        "application/jsonl": Format.JSON,
        "application/x-jsonlines": Format.JSON,
        "text/csv": Format.CSV,
        "application/csv": Format.CSV,
        "text/tab-separated-values": Format.CSV,
    }
)
EXTENSIONS = MappingProxyType(
    {
        **dict.fromkeys(("txt", "text", "log"), Format.TEXT),
        **dict.fromkeys(("md", "markdown", "mdown", "mkd"), Format.MARKDOWN),
        **dict.fromkeys(("html", "htm", "xhtml"), Format.HTML),
        "pdf": Format.PDF,
        "docx": Format.DOCX,
        **dict.fromkeys(("json", "jsonl", "ndjson"), Format.JSON),
        **dict.fromkeys(("csv", "tsv"), Format.CSV),
    }
)
# Declared types that say little: the extension, when it names a format, is more specific.
_WEAK_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/unknown",
        "text/plain",
        "application/vnd.ms-excel",
        "application/x-unknown",
        "application/download",
    }
)
# text/* subtypes read as plain text are the common ones (logs, configs, source); these are not.
_NOT_TEXT = frozenset({"text/rtf", "text/richtext", "text/xml", "text/calendar", "text/vcard"})
_TEXTUAL = frozenset({Format.TEXT, Format.MARKDOWN, Format.HTML, Format.JSON, Format.CSV})
_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)
_MARKDOWN_START = re.compile(rb"\s*(?:#{1,6} |---\r?\n|```)")
_PDF_WINDOW = 1024


def detect_format(*, filename: str | None, media_type: str | None, content: bytes) -> Format:
    """The format to parse ``content`` as. Raises ``UnsupportedMediaType`` for anything else,
    ``CorruptDocument`` when a declared format contradicts the bytes, ``EmptyDocument`` for an
    empty upload that declares nothing."""
    declared_type = (media_type or "").split(";", 1)[0].strip().lower()
    extension = _extension(filename)
    by_type = _format_of_type(declared_type)
    by_extension = EXTENSIONS.get(extension) if extension else None
    declared = by_type
    if by_extension is not None and (by_type is None or declared_type in _WEAK_TYPES):
        declared = by_extension
    if declared is None and declared_type not in _WEAK_TYPES:
        raise UnsupportedMediaType(
            f"Files of type {declared_type[:100]!r} are not accepted; {_hint()}"
        )
    if declared is not None:
        _check_consistent(declared, content)
        return declared
    sniffed = _sniff(content)
    if sniffed is not None:
        return sniffed
    if not content.strip():
        raise EmptyDocument("The file is empty.")
    what = f"'.{extension[:20]}' files" if extension else "Files of this type"
    raise UnsupportedMediaType(f"{what} are not accepted; {_hint()}")


def _hint() -> str:
    return f"upload {ACCEPTED}."


def _extension(filename: str | None) -> str:
    if not filename:
        return ""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[1].lower() if "." in name.strip(".") else ""


def _format_of_type(media_type: str) -> Format | None:
    known = MEDIA_TYPES.get(media_type)
    if known is not None:
        return known
    if media_type.startswith("text/") and media_type not in _NOT_TEXT:
        return Format.TEXT
    if media_type.endswith("+json"):
        return Format.JSON
    return None


def _check_consistent(declared: Format, content: bytes) -> None:
    if not content:
        return
    is_pdf = b"%PDF-" in content[:_PDF_WINDOW]
    is_zip = content.startswith(b"PK\x03\x04")
    if declared is Format.PDF and not is_pdf:
        raise CorruptDocument("The file is declared as a PDF but does not hold one.")
    if declared is Format.DOCX and not is_zip:
        raise CorruptDocument("The file is declared as a Word document but is not one.")
    if declared in _TEXTUAL and (content.startswith(b"%PDF-") or is_zip):
        actual = "a PDF" if content.startswith(b"%PDF-") else "a zip archive or Office file"
        raise CorruptDocument(f"The file is declared as {declared.value} but holds {actual}.")


def _sniff(content: bytes) -> Format | None:
    head = content[:_PDF_WINDOW]
    if b"%PDF-" in head:
        return Format.PDF
    if content.startswith(b"PK\x03\x04"):
        if _is_docx(content):
            return Format.DOCX
        raise UnsupportedMediaType(
            f"Zip archives other than Word documents are not accepted; {_hint()}"
        )
    text_head = head.lstrip(b"\xef\xbb\xbf")
    if _HTML_START.match(text_head):
        return Format.HTML
    if _looks_like_json(content):
        return Format.JSON
    if not _plausibly_text(head) or not content.strip():
        return None
    return Format.MARKDOWN if _MARKDOWN_START.match(text_head) else Format.TEXT


def _is_docx(content: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return False


def _looks_like_json(content: bytes) -> bool:
    stripped = content.lstrip(b"\xef\xbb\xbf").strip()
    return stripped[:1] in (b"{", b"[") and stripped[-1:] in (b"}", b"]")


def _plausibly_text(head: bytes) -> bool:
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for byte in head if byte < 9 or 13 < byte < 32)
    return controls <= 0.05 * len(head)
