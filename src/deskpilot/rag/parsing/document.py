"""What every parser produces: one normalised text and the structural blocks laid over it.

Parsers never compute offsets themselves. They hand block texts, in reading order, to a
``DocumentBuilder``, which cleans each one and joins them with a blank line; offsets are then
exact by construction (``doc.text[b.start:b.end]`` is the block's text), which is what lets a
citation point at the very characters a chunk came from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from deskpilot.rag.errors import DocumentTooLarge, EmptyDocument

MetadataValue = str | int | float | bool
Metadata = Mapping[str, MetadataValue]

BLOCK_SEPARATOR = "\n\n"
MAX_TITLE_CHARS = 300

# C0/C1 controls other than tab and newline, the BOM used as a zero-width space, and lone
# surrogates (JSON's "\ud800" escapes decode to them; they cannot be stored as UTF-8).
_UNWANTED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_SPACE_RUN = re.compile(r"\s+")


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    PDF = "pdf"
    DOCX = "docx"
    JSON = "json"
    CSV = "csv"


class BlockKind(StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST = "list"
    CODE = "code"
    TABLE = "table"
    QUOTE = "quote"
    RECORD = "record"


@dataclass(frozen=True, slots=True)
class Block:
    """One structural unit in reading order; ``[start, end)`` indexes ``ParsedDocument.text``.

    ``headings`` is the path of section titles the block sits in; a heading's own path ends with
    its own title, so a chunk that opens a section is labelled with that section.
    """

    kind: BlockKind
    start: int
    end: int
    level: int = 0
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """``text`` is NFC, ``\\n``-separated, free of NUL and control characters, blocks separated
    by a blank line. It is what a citation shows, so every offset refers to it."""

    format: Format
    text: str
    blocks: tuple[Block, ...]
    title: str | None
    metadata: Metadata


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_bytes: int = 20 * 2**20
    max_chars: int = 5_000_000
    max_pages: int = 2_000
    max_unzipped_bytes: int = 100 * 2**20
    max_records: int = 100_000


DEFAULT_LIMITS = ParseLimits()


def normalise_text(text: str) -> str:
    """Line ends to ``\\n``, controls and lone surrogates removed, NFC. Form feeds (page breaks
    in exported text) become blank lines so they still separate paragraphs."""
    text = _LINE_BREAKS.sub("\n", text).replace("\f", "\n\n")
    text = _SURROGATE.sub("\ufffd", _UNWANTED.sub("", text))
    return unicodedata.normalize("NFC", text)


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to one space: headings, cells, titles."""
    return _SPACE_RUN.sub(" ", text).strip()


def clean_value(text: str) -> str:
    """A short value on one line, safe to store: ids, metadata, titles."""
    return one_line(normalise_text(text))


def clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    return clean_value(title)[:MAX_TITLE_CHARS] or None


def check_size(content: bytes, limits: ParseLimits) -> None:
    if len(content) > limits.max_bytes:
        raise DocumentTooLarge(
            f"The file is {_size(len(content))}; at most {_size(limits.max_bytes)} is accepted."
        )


def _size(count: int) -> str:
    return f"{count / 2**20:,.1f} MB" if count >= 2**20 else f"{count:,} bytes"


def _clean_block(text: str) -> str:
    # Not re.sub(r"[ \t]+$", ..., re.M): it backtracks quadratically over a long run of spaces.
    text = "\n".join(line.rstrip(" \t") for line in normalise_text(text).split("\n"))
    # Leading blank lines go, leading indentation of the first line stays (code keeps its shape).
    return text.lstrip("\n").rstrip()


class DocumentBuilder:
    """Collects blocks for one document; raises ``DocumentTooLarge`` as soon as the text passes
    ``max_chars`` so a hostile file never builds a huge string first."""

    def __init__(self, fmt: Format, limits: ParseLimits) -> None:
        self._format = fmt
        self._max_chars = limits.max_chars
        self._parts: list[str] = []
        self._blocks: list[Block] = []
        self._length = 0
        self._path: list[tuple[int, str]] = []
        self._first_h1: str | None = None
        self.metadata: dict[str, MetadataValue] = {}

    @property
    def length(self) -> int:
        return self._length

    def add(self, kind: BlockKind, text: str, *, level: int = 0, page: int | None = None) -> None:
        text = one_line(normalise_text(text)) if kind is BlockKind.HEADING else _clean_block(text)
        if not text.strip():
            return
        if kind is BlockKind.HEADING:
            level = min(max(level, 1), 6)
            self._enter_section(level, text)
        separator = BLOCK_SEPARATOR if self._parts else ""
        start = self._length + len(separator)
        end = start + len(text)
        if end > self._max_chars:
            raise DocumentTooLarge(
                f"The document's text is longer than the {self._max_chars:,} characters allowed; "
                "split it into smaller documents."
            )
        headings = tuple(title for _, title in self._path)
        self._parts.extend((separator, text))
        self._blocks.append(Block(kind, start, end, level, page, headings))
        self._length = end

    def _enter_section(self, level: int, title: str) -> None:
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, title[:MAX_TITLE_CHARS]))
        if level == 1 and self._first_h1 is None:
            self._first_h1 = title[:MAX_TITLE_CHARS]

    def build(self, *, fallback_title: str | None = None, empty_reason: str = "") -> ParsedDocument:
        """The finished document; ``EmptyDocument`` when no block holds any text."""
        if not self._blocks:
            raise EmptyDocument(
                empty_reason or "The document holds no text to index; check the file's content."
            )
        return ParsedDocument(
            format=self._format,
            text="".join(self._parts),
            blocks=tuple(self._blocks),
            title=self._first_h1 or clean_title(fallback_title),
            metadata=MappingProxyType(dict(self.metadata)),
        )
