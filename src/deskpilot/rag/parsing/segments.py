"""Where a block may be cut, as ``[start, end)`` spans into the document text.

Every splitter returns spans that are trimmed of surrounding whitespace and together cover all
non-whitespace characters of the range they split, which is what makes the chunker's
coverage guarantee hold. They scan with compiled patterns over ``(text, start, end)`` rather
than slicing, so a 5-million-character document is never copied piece by piece.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

from deskpilot.rag.parsing.document import BlockKind
from deskpilot.rag.parsing.text import LIST_MARKER

Span = tuple[int, int]
Splitter = Callable[[str, int, int, int], list[Span]]

# A sentence ends at . ! ? or an ellipsis (closing quotes/brackets included) before whitespace,
# unless the next word starts in lower case ("e.g. the", "approx. three"); CJK full stops need
# no space after them.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|[\u3002\uff01\uff1f]+")
_VISIBLE = re.compile(r"\S")
_LINE = re.compile(r"[^\n]+")
_WORD = re.compile(r"\S+")


def _trim(text: str, start: int, end: int) -> Span | None:
    visible = _VISIBLE.search(text, start, end)
    if visible is None:
        return None
    start = visible.start()
    while text[end - 1].isspace():
        end -= 1
    return start, end


def whole(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    span = _trim(text, start, end)
    return [span] if span else []


def sentences(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    spans: list[Span] = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
        following = _VISIBLE.search(text, match.end(), end)
        if following is not None and text[following.start()].islower():
            continue
        span = _trim(text, cursor, match.end())
        if span:
            spans.append(span)
        cursor = match.end()
    span = _trim(text, cursor, end)
    if span:
        spans.append(span)
    return spans


def lines(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Non-blank lines; leading indentation is kept (it is part of code)."""
    spans: list[Span] = []
    for match in _LINE.finditer(text, start, end):
        if _VISIBLE.search(text, match.start(), match.end()):
            line_end = match.end()
            while text[line_end - 1].isspace():
                line_end -= 1
            spans.append((match.start(), line_end))
    return spans


def items(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """List items: a line that opens with a bullet or number starts one; other lines continue
    the item above."""
    spans: list[Span] = []
    for line_start, line_end in lines(text, start, end, max_chars):
        if spans and not LIST_MARKER.match(text, line_start, line_end):
            spans[-1] = (spans[-1][0], line_end)
        else:
            trimmed = _trim(text, line_start, line_end)
            if trimmed:
                spans.append(trimmed)
    return spans


def words(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Words; one longer than ``max_chars`` (a base64 blob, a hash run) is cut into pieces."""
    spans: list[Span] = []
    for match in _WORD.finditer(text, start, end):
        word_start, word_end = match.span()
        while word_end - word_start > max_chars:
            spans.append((word_start, word_start + max_chars))
            word_start += max_chars
        spans.append((word_start, word_end))
    return spans


# How each kind of block is cut, coarsest first: a unit over the limits is cut with the next.
CHAINS: Mapping[BlockKind, tuple[Splitter, ...]] = MappingProxyType(
    {
        BlockKind.HEADING: (whole, words),
        BlockKind.PARAGRAPH: (sentences, lines, words),
        BlockKind.QUOTE: (sentences, lines, words),
        BlockKind.LIST: (items, lines, sentences, words),
        BlockKind.CODE: (lines, words),
        BlockKind.TABLE: (lines, sentences, words),
        BlockKind.RECORD: (lines, sentences, words),
    }
)
