"""``parse``: bytes of a known format to a ``ParsedDocument``, through the parser registered for
that format. Built-in parsers are registered the way another would be: a ``DocumentParser``
in a read-only mapping, so a caller can pass its own mapping (a different PDF engine, say)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from deskpilot.rag.errors import UnsupportedMediaType
from deskpilot.rag.parsing.document import (
    DEFAULT_LIMITS,
    Format,
    ParsedDocument,
    ParseLimits,
    check_size,
)
from deskpilot.rag.parsing.docx import parse_docx
from deskpilot.rag.parsing.formats import ACCEPTED
from deskpilot.rag.parsing.html import parse_html
from deskpilot.rag.parsing.markdown import parse_markdown
from deskpilot.rag.parsing.pdf import parse_pdf
from deskpilot.rag.parsing.records import parse_records
from deskpilot.rag.parsing.text import parse_text


class DocumentParser(Protocol):
    """Reads one format. Must end in a ``ParsedDocument`` or one of ``deskpilot.rag.errors``'
    refusals, whatever the bytes, and must honour ``limits``."""

    def __call__(self, content: bytes, limits: ParseLimits, /) -> ParsedDocument: ...


def _parse_json(content: bytes, limits: ParseLimits) -> ParsedDocument:
    return parse_records(content, Format.JSON, limits)


def _parse_csv(content: bytes, limits: ParseLimits) -> ParsedDocument:
    return parse_records(content, Format.CSV, limits)


BUILTIN_PARSERS: Mapping[Format, DocumentParser] = MappingProxyType(
    {
        Format.TEXT: parse_text,
        Format.MARKDOWN: parse_markdown,
        Format.HTML: parse_html,
        Format.PDF: parse_pdf,
        Format.DOCX: parse_docx,
        Format.JSON: _parse_json,
        Format.CSV: _parse_csv,
    }
)


def parse(
    content: bytes,
    fmt: Format,
    *,
    limits: ParseLimits = DEFAULT_LIMITS,
    parsers: Mapping[Format, DocumentParser] = BUILTIN_PARSERS,
) -> ParsedDocument:
    check_size(content, limits)
    parser = parsers.get(fmt)
    if parser is None:
        raise UnsupportedMediaType(
            f"Documents in {fmt.value} format are not read; upload {ACCEPTED}."
        )
    return parser(content, limits)
