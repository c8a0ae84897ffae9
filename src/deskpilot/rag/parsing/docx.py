"""Word documents (.docx): a zip of XML parts, read with ``zipfile`` and ``defusedxml``.

Zip bombs: every part is read through a cap (``max_unzipped_bytes`` for all parts together),
never trusting the sizes the archive declares. XML attacks: ``defusedxml`` with DTDs forbidden
outright (no Office part has one), so entity expansion and external entities cannot happen.

Structure: paragraph styles give headings (``Title`` and ``Heading 1``-``6``, by style name or
outline level, through ``basedOn`` chains, so localised and custom heading styles count), list
paragraphs come from numbering (``numPr``, direct or via the style) with bullets or numbers
from ``numbering.xml``, ``Quote`` styles give quotes, tables give one line per row. Deleted
tracked changes, field codes and the fallback copy of drawings are not text and are skipped.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from xml.etree.ElementTree import Element, ParseError

# No stubs for defusedxml in the dev dependencies (types-defusedxml would type these);
# ``unused-ignore`` keeps this line valid once they are added.
from defusedxml import DefusedXmlException  # type: ignore[import-untyped, unused-ignore]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped, unused-ignore]

from deskpilot.rag.errors import CorruptDocument, DocumentTooLarge
from deskpilot.rag.parsing.document import (
    BlockKind,
    DocumentBuilder,
    Format,
    ParsedDocument,
    ParseLimits,
    clean_title,
    one_line,
)
from deskpilot.rag.parsing.docx_styles import Numbering, Styles, tag

_DOCUMENT = "word/document.xml"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    ValueError,
    EOFError,
    OSError,
    zlib.error,
)


def parse_docx(content: bytes, limits: ParseLimits) -> ParsedDocument:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except _ZIP_ERRORS:
        raise CorruptDocument(
            "The Word document is damaged: it is not a valid .docx file."
        ) from None
    with archive:
        parts = _Parts(archive, limits)
        body = parts.xml(_DOCUMENT, required=True)
        assert body is not None  # noqa: S101 - required parts are never None
        styles = Styles.read(parts.xml("word/styles.xml"))
        numbering = Numbering.read(parts.xml("word/numbering.xml"))
        core = parts.xml("docProps/core.xml")
    builder = DocumentBuilder(Format.DOCX, limits)
    _Walker(builder, styles, numbering).walk(body)
    title, author = _core(core)
    if author:
        builder.metadata["author"] = author
    return builder.build(fallback_title=title)


class _Parts:
    """Reads parts through one shared budget of uncompressed bytes."""

    def __init__(self, archive: zipfile.ZipFile, limits: ParseLimits) -> None:
        self._archive = archive
        self._budget = limits.max_unzipped_bytes

    def xml(self, name: str, *, required: bool = False) -> Element | None:
        data = self._read(name, required=required)
        if data is None:
            return None
        try:
            root: Element = fromstring(data, forbid_dtd=True)
        except DefusedXmlException:
            raise CorruptDocument(
                "The Word document contains XML declarations that are not allowed."
            ) from None
        except ParseError:
            raise CorruptDocument("The Word document is damaged: its XML cannot be read.") from None
        return root

    def _read(self, name: str, *, required: bool) -> bytes | None:
        try:
            info = self._archive.getinfo(name)
        except KeyError:
            if required:
                raise CorruptDocument(
                    "The file is not a Word document: it has no document body."
                ) from None
            return None
        try:
            with self._archive.open(info) as member:
                data = member.read(self._budget + 1)
        except _ZIP_ERRORS:
            raise CorruptDocument(
                "The Word document is damaged: a part cannot be unzipped."
            ) from None
        if len(data) > self._budget:
            raise DocumentTooLarge(
                "The Word document expands to more than "
                f"{self._budget // 2**20:,} MB when unzipped; it is too large to read."
            )
        self._budget -= len(data)
        return data


class _Walker:
    """Emits blocks in body order; consecutive list (or code) paragraphs form one block."""

    def __init__(self, builder: DocumentBuilder, styles: Styles, numbering: Numbering) -> None:
        self._builder = builder
        self._styles = styles
        self._numbering = numbering
        self._pending: list[str] = []
        self._pending_kind: BlockKind | None = None

    def walk(self, root: Element) -> None:
        body = next((child for child in root if tag(child) == "body"), root)
        # An explicit stack, not recursion: content controls can nest arbitrarily deep.
        stack = list(reversed(body))
        while stack:
            element = stack.pop()
            name = tag(element)
            if name == "p":
                self._paragraph(element)
            elif name == "tbl":
                self._table(element)
            elif name in ("sdt", "sdtContent", "customXml", "ins", "smartTag"):
                stack.extend(reversed(element))
        self._flush()

    def _paragraph(self, paragraph: Element) -> None:
        text = paragraph_text(paragraph)
        if not text.strip():
            return
        style = self._styles.of(paragraph)
        if style.heading:
            self._flush()
            self._builder.add(BlockKind.HEADING, text, level=style.heading)
        elif style.list_level is not None:
            marker = self._numbering.marker(style.num_id, style.list_level)
            line = f"{'  ' * style.list_level}{marker} {one_line(text)}"
            self._pend(BlockKind.LIST, line)
        elif style.code:
            self._pend(BlockKind.CODE, text.rstrip())
        else:
            self._flush()
            self._builder.add(BlockKind.QUOTE if style.quote else BlockKind.PARAGRAPH, text)

    def _pend(self, kind: BlockKind, line: str) -> None:
        if self._pending_kind is not kind:
            self._flush()
            self._pending_kind = kind
        self._pending.append(line)

    def _flush(self) -> None:
        if self._pending_kind is not None:
            self._builder.add(self._pending_kind, "\n".join(self._pending))
        self._pending, self._pending_kind = [], None

    def _table(self, table: Element) -> None:
        self._flush()
        rows: list[str] = []
        for row in (child for child in table if tag(child) == "tr"):
            cells = (
                one_line(" ".join(paragraph_text(p) for p in cell.iter() if tag(p) == "p"))
                for cell in row
                if tag(cell) == "tc"
            )
            line = " | ".join(cell for cell in cells if cell)
            if line:
                rows.append(line)
        self._builder.add(BlockKind.TABLE, "\n".join(rows))


def paragraph_text(paragraph: Element) -> str:
    """The visible text of one paragraph: runs, tabs and breaks, not deleted text, field codes
    or the fallback copy of a drawing (Word stores text boxes twice)."""
    pieces: list[str] = []
    stack = [paragraph]
    while stack:
        element = stack.pop()
        name = tag(element)
        if name == "t" and element.text:
            pieces.append(element.text)
        elif name == "tab":
            pieces.append("\t")
        elif name in ("br", "cr"):
            pieces.append("\n")
        elif name == "noBreakHyphen":
            pieces.append("-")
        elif name == "p" and element is not paragraph:
            pieces.append("\n")
        if name not in ("Fallback", "del", "instrText"):
            stack.extend(reversed(element))
    return "".join(pieces)


def _core(core: Element | None) -> tuple[str | None, str | None]:
    if core is None:
        return None, None
    title = core.find(f"{_DC}title")
    author = core.find(f"{_DC}creator")
    return (
        clean_title(title.text) if title is not None else None,
        clean_title(author.text) if author is not None else None,
    )
