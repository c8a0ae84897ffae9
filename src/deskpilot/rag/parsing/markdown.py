"""Markdown by a line-based reader: the block structure CommonMark and GFM documents use in
practice (ATX and setext headings, fenced and indented code, nested lists, pipe tables, block
quotes, front matter), without the full CommonMark edge cases. The text kept is what a reader
sees: heading marks, fences, quote marks and inline syntax are dropped; list markers stay, so
steps keep their numbers.

Each reader method consumes the lines of one block and returns the index after it, so the
reader makes progress on every line whatever the input (no backtracking, linear time).
"""

from __future__ import annotations

import re

from deskpilot.rag.parsing.document import (
    BlockKind,
    DocumentBuilder,
    Format,
    ParsedDocument,
    ParseLimits,
)
from deskpilot.rag.parsing.inline import front_matter, strip_inline
from deskpilot.rag.parsing.text import decode_text

_FENCE = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_THEMATIC = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_QUOTE = re.compile(r" {0,3}>")
_QUOTE_MARKS = re.compile(r"^(?: {0,3}> ?)+")
_ITEM = re.compile(r"( *)([-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_INTERRUPTING_ITEM = re.compile(r" {0,3}(?:[-*+]|1[.)])[ \t]+\S")
_TABLE_DELIMITER = re.compile(r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_INDENTED = re.compile(r"(?: {4}|\t)")
_COMMENT_START = re.compile(r" {0,3}<!--")


def parse_markdown(content: bytes, limits: ParseLimits) -> ParsedDocument:
    lines = decode_text(content, limits).split("\n")
    fields, first = front_matter(lines)
    builder = DocumentBuilder(Format.MARKDOWN, limits)
    builder.metadata.update(fields)
    _Reader(lines, builder).run(first)
    title = fields.get("title")
    return builder.build(fallback_title=title if isinstance(title, str) else None)


def _is_blank(line: str) -> bool:
    return not line.strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


class _Reader:
    def __init__(self, lines: list[str], builder: DocumentBuilder) -> None:
        self._lines = lines
        self._builder = builder

    def run(self, index: int) -> None:
        while index < len(self._lines):
            index = self._block(index)

    def _block(self, i: int) -> int:
        line = self._lines[i]
        if _is_blank(line) or _THEMATIC.fullmatch(line):
            return i + 1
        if _FENCE.match(line):
            return self._fenced(i)
        atx = _ATX.fullmatch(line)
        if atx:
            self._builder.add(
                BlockKind.HEADING, strip_inline(atx.group(2) or ""), level=len(atx.group(1))
            )
            return i + 1
        if _QUOTE.match(line):
            return self._quote(i)
        if _ITEM.match(line) and _indent(line) <= 3:
            return self._list(i)
        if _COMMENT_START.match(line):
            return self._comment(i)
        if self._is_table_start(i):
            return self._table(i)
        if _INDENTED.match(line):
            return self._indented(i)
        return self._paragraph(i)

    def _starts_other_block(self, line: str) -> bool:
        return bool(
            _FENCE.match(line)
            or _ATX.fullmatch(line)
            or _QUOTE.match(line)
            or _THEMATIC.fullmatch(line)
            or _INTERRUPTING_ITEM.match(line)
        )

    def _paragraph(self, i: int) -> int:
        collected = [self._lines[i].strip()]
        i += 1
        while i < len(self._lines) and not _is_blank(self._lines[i]):
            line = self._lines[i]
            setext = _SETEXT.fullmatch(line)
            if setext:
                level = 1 if setext.group(1)[0] == "=" else 2
                self._builder.add(BlockKind.HEADING, strip_inline(" ".join(collected)), level=level)
                return i + 1
            if self._starts_other_block(line) or self._is_table_start(i):
                break
            collected.append(line.strip())
            i += 1
        self._builder.add(BlockKind.PARAGRAPH, strip_inline("\n".join(collected)))
        return i

    def _fenced(self, i: int) -> int:
        opening = _FENCE.match(self._lines[i])
        assert opening is not None  # noqa: S101 - the caller matched this line
        indent, fence = len(opening.group(1)), opening.group(2)
        closing = re.compile(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
        body: list[str] = []
        i += 1
        while i < len(self._lines) and not closing.fullmatch(self._lines[i]):
            line = self._lines[i]
            body.append(line[min(indent, _indent(line)) :])
            i += 1
        self._builder.add(BlockKind.CODE, "\n".join(body))
        return i + 1

    def _indented(self, i: int) -> int:
        body: list[str] = []
        while i < len(self._lines):
            line = self._lines[i]
            if not _is_blank(line) and not _INDENTED.match(line):
                break
            body.append(line[4:] if line.startswith("    ") else line[1:])
            i += 1
        self._builder.add(BlockKind.CODE, "\n".join(body))
        return i

    def _quote(self, i: int) -> int:
        body: list[str] = []
        while i < len(self._lines) and not _is_blank(self._lines[i]):
            line = self._lines[i]
            if not _QUOTE.match(line) and (body == [] or self._starts_other_block(line)):
                break
            body.append(_QUOTE_MARKS.sub("", line).rstrip())
            i += 1
        self._builder.add(BlockKind.QUOTE, "\n".join(strip_inline(b) for b in body if b.strip()))
        return i

    def _comment(self, i: int) -> int:
        while i < len(self._lines) and "-->" not in self._lines[i]:
            i += 1
        return i + 1

    def _is_table_start(self, i: int) -> bool:
        return (
            "|" in self._lines[i]
            and i + 1 < len(self._lines)
            and "-" in self._lines[i + 1]
            and _TABLE_DELIMITER.fullmatch(self._lines[i + 1]) is not None
            and ("|" in self._lines[i + 1] or self._lines[i].strip().startswith("|"))
        )

    def _table(self, i: int) -> int:
        rows = [_row(self._lines[i])]
        i += 2
        while i < len(self._lines) and "|" in self._lines[i] and not _is_blank(self._lines[i]):
            rows.append(_row(self._lines[i]))
            i += 1
        self._builder.add(BlockKind.TABLE, "\n".join(row for row in rows if row.strip(" |")))
        return i

    def _list(self, i: int) -> int:
        base = _indent(self._lines[i])
        rendered: list[str] = []
        fence: str | None = None
        while i < len(self._lines):
            line = self._lines[i]
            stripped = line.strip()
            if fence is None and rendered:
                if not stripped:
                    # One look-ahead per run of blank lines keeps this linear.
                    following = self._next_non_blank(i)
                    if following is None or not self._continues_after_blank(following, base):
                        break
                    i = following
                    continue
                if not self._continues_list(i, base):
                    break
            if stripped.startswith(("```", "~~~")):
                if fence is None:
                    fence = stripped[:3]
                elif stripped.startswith(fence):
                    fence = None
            elif stripped:
                text = line[min(base, _indent(line)) :].rstrip()
                rendered.append(text if fence else strip_inline(text))
            i += 1
        self._builder.add(BlockKind.LIST, "\n".join(rendered))
        return i

    def _next_non_blank(self, i: int) -> int | None:
        return next((j for j in range(i, len(self._lines)) if not _is_blank(self._lines[j])), None)

    def _continues_after_blank(self, i: int, base: int) -> bool:
        line = self._lines[i]
        if _ITEM.match(line):
            return not _THEMATIC.fullmatch(line)
        return _indent(line) >= base + 2

    def _continues_list(self, i: int, base: int) -> bool:
        line = self._lines[i]
        if _ITEM.match(line):
            return not _THEMATIC.fullmatch(line)
        if _indent(line) >= base + 2:
            return True
        # A lazy continuation line belongs to the item above unless it opens a block of its own.
        return not _is_blank(self._lines[i - 1]) and not self._starts_other_block(line)


def _row(line: str) -> str:
    cells = _CELL_SPLIT.split(line.strip())
    if cells and not cells[0].strip():
        cells = cells[1:]
    if cells and not cells[-1].strip():
        cells = cells[:-1]
    return " | ".join(strip_inline(cell.strip().replace("\\|", "|")) for cell in cells)
