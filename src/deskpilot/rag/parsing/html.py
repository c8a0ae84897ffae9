"""HTML with the standard library's tokenizer (``html.parser``): no tree is built, so neither
deep nesting nor unclosed tags cost more than one pass, and nothing is fetched or executed.

Text outside the reading flow is dropped (script, style, head, nav, templates, SVG, anything
marked ``hidden``); ``<title>`` is read for the title only. Block elements end the text
collected so far; ``h1``-``h6`` become headings, ``pre`` code (whitespace kept), ``li`` list
lines (nested lists indented, ordered ones numbered), ``tr`` table rows with cells joined by
`` | ``, ``blockquote`` quotes. Entities are decoded by the tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import MappingProxyType

from deskpilot.rag.parsing.document import (
    BlockKind,
    DocumentBuilder,
    Format,
    ParsedDocument,
    ParseLimits,
    one_line,
)
from deskpilot.rag.parsing.markup import feed_all
from deskpilot.rag.parsing.text import decode_text

# fmt: off
_SKIPPED = frozenset({
    "script", "style", "head", "nav", "noscript", "template", "svg", "math", "iframe", "object",
    "canvas", "select", "datalist",
})
_VOID = frozenset({
    "br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "param",
    "source", "track", "wbr",
})
_BLOCKS = frozenset({
    "p", "div", "section", "article", "main", "header", "footer", "aside", "figure",
    "figcaption", "form", "fieldset", "address", "details", "summary", "dl", "dt", "dd", "hr",
    "center", "caption", "legend",
})
# fmt: on
_HEADINGS = MappingProxyType({f"h{n}": n for n in range(1, 7)})
_SPACES = re.compile(r"[ \t\r\n\f]+")
# A <br> outside <pre>: source newlines are mere spaces in HTML, so a line break is marked with
# a character the whitespace collapse leaves alone (U+2028 is a line break to the normaliser).
_BREAK = "\u2028"


@dataclass
class _ListLevel:
    ordered: bool
    counter: int = 0


@dataclass
class _Table:
    rows: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self, builder: DocumentBuilder) -> None:
        super().__init__(convert_charrefs=True)
        self._builder = builder
        self._text: list[str] = []
        self._skip: list[str] = []
        self._heading = 0
        self._pre = 0
        self._quote = 0
        self._lists: list[_ListLevel] = []
        self._items: list[str] = []
        self._table: _Table | None = None
        self._table_depth = 0
        self._in_title = False
        self.title_parts: list[str] = []
        self.language: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self._skip in ([], ["head"]) and not self.title_parts:
            self._in_title = True  # the page's title, not an SVG icon's
        elif tag == "body" and self._skip[:1] == ["head"]:
            self._skip.clear()  # </head> is optional: the body ends the head
        elif self._skip:
            if tag == self._skip[-1]:
                self._skip.append(tag)
        elif tag == "html":
            self.language = next((v for k, v in attrs if k == "lang" and v), None)
        elif tag in _SKIPPED or (tag not in _VOID and any(k == "hidden" for k, _ in attrs)):
            self._skip.append(tag)
        elif tag == "br":
            self._text.append("\n" if self._pre else _BREAK)
        else:
            self._open(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
        else:
            self._close(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip:
            self._text.append(data)

    def _open(self, tag: str) -> None:
        if tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in ("ul", "ol", "menu"):
            self._flush()
            self._lists.append(_ListLevel(ordered=tag == "ol"))
        elif tag == "li":
            self._flush()
            if self._lists:
                self._lists[-1].counter += 1
        elif tag == "blockquote":
            self._flush()
            self._quote += 1
        elif tag in ("table", "tr", "td", "th"):
            self._table_tag(tag, opening=True)
        elif tag in _BLOCKS:
            self._flush()

    def _close(self, tag: str) -> None:
        if tag in _HEADINGS:
            self._flush()
            self._heading = 0
        elif tag == "pre":
            self._flush()
            self._pre = max(self._pre - 1, 0)
        elif tag in ("ul", "ol", "menu"):
            self._flush()
            if self._lists:
                self._lists.pop()
            if not self._lists:
                self._emit_list()
        elif tag == "blockquote":
            self._flush()
            self._quote = max(self._quote - 1, 0)
        elif tag in ("table", "tr", "td", "th"):
            self._table_tag(tag, opening=False)
        elif tag in _BLOCKS or tag == "li":
            self._flush()

    def _table_tag(self, tag: str, *, opening: bool) -> None:
        if tag == "table":
            self._table_depth += 1 if opening else -1
            if opening and self._table_depth == 1:
                self._flush()
                self._emit_list()
                self._table = _Table()
            elif not opening and self._table_depth <= 0:
                self._table_depth = 0
                self._end_table()
            return
        if self._table is None or self._table_depth > 1:
            self._text.append(" ")  # a nested table's cells run on inside the outer cell
            return
        self._end_cell()
        if tag == "tr":
            self._end_row()

    def _end_cell(self) -> None:
        if self._table is not None:
            cell = one_line("".join(self._text))
            self._text.clear()
            if cell:
                self._table.cells.append(cell)

    def _end_row(self) -> None:
        if self._table is not None and self._table.cells:
            self._table.rows.append(" | ".join(self._table.cells))
            self._table.cells = []

    def _end_table(self) -> None:
        self._end_cell()
        self._end_row()
        if self._table is not None:
            self._builder.add(BlockKind.TABLE, "\n".join(self._table.rows))
        self._table = None

    def _flush(self) -> None:
        """Ends the text collected so far as a block of the kind the context gives it."""
        if self._table is not None:
            self._text.append(" ")  # blocks inside a cell stay in that cell
            return
        raw = "".join(self._text)
        self._text.clear()
        if not raw.strip():
            return
        if self._lists and not (self._pre or self._heading):
            self._add_item(raw)
            return
        # Items gathered so far go out first, so a block inside a list keeps its place.
        self._emit_list()
        if self._pre:
            self._builder.add(BlockKind.CODE, raw.strip("\n"))
        elif self._heading:
            self._builder.add(BlockKind.HEADING, raw, level=self._heading)
        else:
            lines = (_SPACES.sub(" ", line).strip() for line in raw.split(_BREAK))
            kind = BlockKind.QUOTE if self._quote else BlockKind.PARAGRAPH
            self._builder.add(kind, "\n".join(filter(None, lines)))

    def _add_item(self, raw: str) -> None:
        level = self._lists[-1]
        marker = f"{level.counter}." if level.ordered else "-"
        indent = "  " * (len(self._lists) - 1)
        self._items.append(f"{indent}{marker} {one_line(raw)}")

    def _emit_list(self) -> None:
        if self._items:
            self._builder.add(BlockKind.LIST, "\n".join(self._items))
        self._items = []

    def finish(self) -> None:
        self._flush()
        self._end_table()
        self._lists.clear()
        self._emit_list()


def parse_html(content: bytes, limits: ParseLimits) -> ParsedDocument:
    builder = DocumentBuilder(Format.HTML, limits)
    collector = _Collector(builder)
    feed_all(collector, decode_text(content, limits))
    collector.finish()
    if collector.language:
        builder.metadata["language"] = collector.language[:35]
    return builder.build(fallback_title="".join(collector.title_parts))
