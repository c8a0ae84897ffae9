"""Bytes to text, and plain text to paragraphs.

Decoding order: a BOM decides (UTF-8, UTF-16, UTF-32); else UTF-16 when nearly every other
byte is NUL (a BOM-less export from Windows tools); else UTF-8; else, if there is no NUL byte,
cp1252, then latin-1, the legacy encodings tenants' exports realistically use. Whatever decodes
must still look like text: a file in which more than 5% of characters are control characters
is binary that happened to decode, and is refused rather than indexed as noise.
"""

from __future__ import annotations

import codecs
import re

from deskpilot.rag.errors import CorruptDocument, DocumentTooLarge
from deskpilot.rag.parsing.document import (
    BlockKind,
    DocumentBuilder,
    Format,
    ParsedDocument,
    ParseLimits,
    normalise_text,
)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_RATIO = 0.05
_STRAY_CONTROLS = 8
_SNIFF_BYTES = 4096
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_BULLETS = "-*+\u2022\u25e6\u25aa\u2023\u2013"
LIST_MARKER = re.compile(rf"[ \t]*(?:[{_BULLETS}]|\d{{1,9}}[.)]|[a-zA-Z][.)])[ \t]")


def decode_text(content: bytes, limits: ParseLimits) -> str:
    """The file's text, normalised (see ``normalise_text``), or ``CorruptDocument``."""
    raw = _decode(content)
    if len(raw) > limits.max_chars:
        raise DocumentTooLarge(
            f"The document's text is longer than the {limits.max_chars:,} characters allowed; "
            "split it into smaller documents."
        )
    sample = raw[: _SNIFF_BYTES * 4]
    # A few stray controls (an ESC, a bell) are noise the normaliser removes; a share is binary.
    if len(_CONTROL.findall(sample)) > _STRAY_CONTROLS + _MAX_CONTROL_RATIO * len(sample):
        raise CorruptDocument(
            "The file does not look like text: it holds binary data. Upload it in its own "
            "format (PDF, DOCX) or export it as text."
        )
    return normalise_text(raw)


def _decode(content: bytes) -> str:
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return _strict(content[len(bom) :], encoding)
    # Before UTF-8: BOM-less UTF-16 of ASCII text is also valid UTF-8 (with a NUL every other byte).
    utf16 = _utf16_without_bom(content)
    if utf16 is not None:
        return _strict(content, utf16)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in content:
        raise CorruptDocument(
            "The file is not readable text: it holds NUL bytes and is not valid UTF-8 or UTF-16."
        )
    try:
        return content.decode("cp1252")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _utf16_without_bom(content: bytes) -> str | None:
    sample = content[:_SNIFF_BYTES]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _strict(content: bytes, encoding: str) -> str:
    try:
        return content.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CorruptDocument(
            f"The file is not valid {encoding.upper()} text (invalid bytes at position "
            f"{exc.start:,}); save it again as UTF-8."
        ) from None


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, non-empty."""
    return [part for part in _PARAGRAPH_BREAK.split(text) if part.strip()]


def add_paragraphs(builder: DocumentBuilder, text: str, *, page: int | None = None) -> None:
    """Plain paragraphs; one that opens with a bullet or number is kept as a list."""
    for part in paragraphs(text):
        kind = BlockKind.LIST if LIST_MARKER.match(part) else BlockKind.PARAGRAPH
        builder.add(kind, part, page=page)


def parse_text(content: bytes, limits: ParseLimits) -> ParsedDocument:
    builder = DocumentBuilder(Format.TEXT, limits)
    add_paragraphs(builder, decode_text(content, limits))
    return builder.build()
