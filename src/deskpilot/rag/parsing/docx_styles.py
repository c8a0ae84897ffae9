"""What a DOCX paragraph is (heading, list item, quote, code) from its properties, its style
(``styles.xml``) and the numbering definitions (``numbering.xml``).

Names are matched by local name, ignoring the namespace, so both Transitional and Strict OOXML
(which use different namespace URIs) read the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import Element

_HEADING_NAME = re.compile(r"heading\s*([1-9])", re.I)
_MAX_BASED_ON = 10  # style inheritance chains are short; a cycle must not loop forever
_LEVELS = 9  # Word's list levels and outline levels are 0-8
_SMALL_NUMBER = re.compile(r"[0-9]{1,2}")


def tag(element: Element) -> str:
    """The local name: ``{namespace}p`` -> ``p``."""
    name = element.tag
    return name.rsplit("}", 1)[-1] if isinstance(name, str) else ""


def attr(element: Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if key == name or key.endswith("}" + name):
            return value
    return None


def child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((c for c in element if tag(c) == name), None)


def children(element: Element, name: str) -> Iterator[Element]:
    return (c for c in element if tag(c) == name)


def _value(element: Element | None, name: str) -> str | None:
    found = child(element, name)
    return attr(found, "val") if found is not None else None


@dataclass(frozen=True, slots=True)
class ParagraphStyle:
    heading: int = 0
    list_level: int | None = None
    num_id: str = ""
    quote: bool = False
    code: bool = False


@dataclass(frozen=True, slots=True)
class _Style:
    name: str
    based_on: str | None
    outline: int | None
    num_id: str | None
    level: int


def _level(value: str | None) -> int | None:
    """A list or outline level, 0-8; anything else (a crafted "99999999") is no level."""
    if value is None or not _SMALL_NUMBER.fullmatch(value):
        return None
    level = int(value)
    return level if level < _LEVELS else None


def _numbering(properties: Element | None) -> tuple[str | None, int]:
    numbering = child(properties, "numPr")
    if numbering is None:
        return None, 0
    return _value(numbering, "numId"), _level(_value(numbering, "ilvl")) or 0


def _outline(properties: Element | None) -> int | None:
    return _level(_value(properties, "outlineLvl"))


class Styles:
    def __init__(self, styles: dict[str, _Style]) -> None:
        self._styles = styles

    @classmethod
    def read(cls, root: Element | None) -> Styles:
        styles: dict[str, _Style] = {}
        for style in children(root, "style") if root is not None else ():
            style_id = attr(style, "styleId")
            if style_id is None or attr(style, "type") not in (None, "paragraph"):
                continue
            properties = child(style, "pPr")
            num_id, level = _numbering(properties)
            styles[style_id] = _Style(
                name=(_value(style, "name") or style_id).lower(),
                based_on=_value(style, "basedOn"),
                outline=_outline(properties),
                num_id=num_id,
                level=level,
            )
        return cls(styles)

    def of(self, paragraph: Element) -> ParagraphStyle:
        properties = child(paragraph, "pPr")
        style_id = _value(properties, "pStyle") or ""
        chain = list(self._chain(style_id))
        names = [s.name for s in chain] or [style_id.lower()]
        num_id, level = _numbering(properties)
        if num_id is None:
            inherited = next((s for s in chain if s.num_id is not None), None)
            num_id, level = (inherited.num_id, inherited.level) if inherited else (None, 0)
        outline = _outline(properties)
        if outline is None:
            outline = next((s.outline for s in chain if s.outline is not None), None)
        return ParagraphStyle(
            heading=_heading_level(names, outline),
            list_level=level if num_id not in (None, "0") else None,
            num_id=num_id or "",
            quote=any("quote" in n for n in names),
            code=any("code" in n or "preformatted" in n for n in names),
        )

    def _chain(self, style_id: str) -> Iterator[_Style]:
        for _ in range(_MAX_BASED_ON):
            style = self._styles.get(style_id)
            if style is None:
                return
            yield style
            if style.based_on is None:
                return
            style_id = style.based_on


def _heading_level(names: list[str], outline: int | None) -> int:
    for name in names:
        if name == "title":
            return 1
        match = _HEADING_NAME.fullmatch(name)
        if match:
            return min(int(match.group(1)), 6)
    return outline + 1 if outline is not None and outline < 6 else 0


class Numbering:
    """Bullet or number for each list paragraph; counters live in this per-document object."""

    def __init__(self, formats: dict[str, dict[int, str]]) -> None:
        self._formats = formats
        self._counters: dict[str, list[int]] = {}

    @classmethod
    def read(cls, root: Element | None) -> Numbering:
        if root is None:
            return cls({})
        abstract: dict[str, dict[int, str]] = {}
        for definition in children(root, "abstractNum"):
            levels: dict[int, str] = {}
            for lvl in children(definition, "lvl"):
                index = _level(attr(lvl, "ilvl"))
                if index is not None:
                    levels[index] = _value(lvl, "numFmt") or "decimal"
            abstract[attr(definition, "abstractNumId") or ""] = levels
        formats = {
            attr(num, "numId") or "": abstract.get(_value(num, "abstractNumId") or "", {})
            for num in children(root, "num")
        }
        return cls(formats)

    def marker(self, num_id: str, level: int) -> str:
        fmt = self._formats.get(num_id, {}).get(level, "bullet")
        if fmt in ("bullet", "none"):
            return "-"
        counters = self._counters.setdefault(num_id, [0] * _LEVELS)
        counters[level] += 1
        counters[level + 1 :] = [0] * (_LEVELS - level - 1)  # sub-levels restart under a new item
        return f"{counters[level]}."
