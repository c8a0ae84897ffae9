"""Markdown inline syntax reduced to the text a reader sees, and YAML-ish front matter.

Uploaded lines can be megabytes of ``*``, ``[`` or ``<``, so every pattern is linear over its
input: repetition is bounded and a span's content excludes its own delimiters (an emphasis
cannot contain ``*``, a tag cannot contain ``<``), so a failed match stops at the next one
instead of scanning on. Nested emphasis is handled by running the strong pattern again after
the single one. Text longer than ``_MAX_INLINE_CHARS`` is left as written (it is not prose).
"""

from __future__ import annotations

import html
import re

from deskpilot.rag.parsing.document import MetadataValue

_MAX_INLINE_CHARS = 20_000
_CODE_SPAN = re.compile(r"(`{1,3})([^`]{1,2000}?)\1")
_IMAGE = re.compile(r"!\[([^\[\]]{0,500})\]\([^()\s]{0,2000}(?:\s+\"[^\"]{0,500}\")?\)")
_LINK = re.compile(r"\[([^\[\]]{1,500})\]\(\s*<?([^()\s<>]{0,2000})>?(?:\s+\"[^\"]{0,500}\")?\s*\)")
_REF_LINK = re.compile(r"\[([^\[\]]{1,500})\]\[[^\[\]]{0,200}\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]{1,2000}|[^<>\s@]{1,200}@[^<>\s@]{1,200})>")
_HTML_COMMENT = re.compile(r"<!--[^<>]{0,1000}?-->")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,30}(?:\s[^<>]{0,2000})?/?>")
_STRONG_STAR = re.compile(r"\*\*(?=[^\s*])([^*\n]{1,1000}?)(?<=[^\s*])\*\*")
_STRONG_UNDERSCORE = re.compile(r"__(?=[^\s_])([^_\n]{1,1000}?)(?<=[^\s_])__")
_EMPHASIS_STAR = re.compile(r"\*(?=[^\s*])([^*\n]{1,1000}?)(?<=[^\s*])\*")
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\s_])([^_\n]{1,1000}?)(?<=[^\s_])_(?![\w_])")
_STRIKE = re.compile(r"~~(?=[^\s~])([^~\n]{1,1000}?)(?<=[^\s~])~~")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_PRIVATE_BASE = 0xE000
_PRIVATE = re.compile("[\ue000-\ue07f]")
_EXTERNAL = re.compile(r"(?:https?|ftp|mailto):", re.I)

_FRONT_MATTER_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,63})\s*:\s*(.*)")
_MAX_FRONT_MATTER_LINES = 200
_MAX_FRONT_MATTER_FIELDS = 20
_MAX_FRONT_MATTER_VALUE = 300


def strip_inline(text: str) -> str:
    """``**Reset** the [VPN](https://vpn.example) `token`` -> ``Reset the VPN (https://...)
    token``. Code spans keep their content untouched."""
    if len(text) > _MAX_INLINE_CHARS:
        return text
    pieces: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        pieces.append(_strip_prose(text[position : match.start()]))
        pieces.append(match.group(2))
        position = match.end()
    pieces.append(_strip_prose(text[position:]))
    return "".join(pieces)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if _EXTERNAL.match(url) and url != label:
        return f"{label} ({url})"
    return label


def _strip_prose(text: str) -> str:
    if not any(mark in text for mark in "*_~[]<>\\&"):
        return text
    # An escaped mark ("\\*") is hidden from the patterns as a private-use character and
    # restored last, unless the text already holds such characters.
    hidden = not _PRIVATE.search(text)
    text = _ESCAPE.sub(_hide if hidden else _unescape, text)
    text = _HTML_COMMENT.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(_link, text)
    text = _REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    for pattern in (_STRONG_STAR, _STRONG_UNDERSCORE, _EMPHASIS_STAR, _EMPHASIS_UNDERSCORE):
        text = pattern.sub(r"\1", text)
    text = _STRONG_STAR.sub(r"\1", text)  # "**a *b* c**" once "*b*" is gone
    text = _STRONG_UNDERSCORE.sub(r"\1", text)
    text = _STRIKE.sub(r"\1", text)
    text = html.unescape(text)
    return _PRIVATE.sub(_reveal, text) if hidden else text


def _hide(match: re.Match[str]) -> str:
    return chr(_PRIVATE_BASE + ord(match.group(1)))


def _unescape(match: re.Match[str]) -> str:
    return match.group(1)


def _reveal(match: re.Match[str]) -> str:
    return chr(ord(match.group()) - _PRIVATE_BASE)


def front_matter(lines: list[str]) -> tuple[dict[str, MetadataValue], int]:
    """``---`` ... ``---`` at the very top: simple ``key: value`` fields as metadata (lists and
    nested maps are skipped, not parsed: this is not a YAML parser) and the line after it."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    limit = min(len(lines), _MAX_FRONT_MATTER_LINES)
    closing = next((i for i in range(1, limit) if lines[i].strip() in ("---", "...")), None)
    if closing is None:
        return {}, 0
    fields: dict[str, MetadataValue] = {}
    for line in lines[1:closing]:
        match = _FRONT_MATTER_FIELD.fullmatch(line.strip())
        if match is None or line[:1].isspace() or len(fields) >= _MAX_FRONT_MATTER_FIELDS:
            continue
        value = match.group(2).strip().strip("\"'").strip()
        if value and not value.startswith(("[", "{", "|", ">")):
            fields[match.group(1).lower()] = value[:_MAX_FRONT_MATTER_VALUE]
    return fields, closing + 1
