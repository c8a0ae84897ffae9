"""Rows out of JSON and CSV exports, each a flat ``{field: value}`` map in the file's order.

JSON: an array of objects, an object wrapping one (``records``, ``data`` or ``items``), a
single object, or JSON Lines. Nested objects flatten to dotted keys (``assignee.name``); a list
of plain values becomes one comma-separated value, a list holding objects is indexed
(``comments.0.body``). Nesting deeper than Python's recursion limit is refused by ``json``
itself; flattening walks with an explicit stack, so depth below that costs nothing extra.
``NaN`` and ``Infinity`` are not JSON and are refused.

CSV: a header row, then one record per row. The delimiter is whichever of comma, semicolon or
tab occurs most in the header outside quotes (``csv.Sniffer`` is slow and often wrong on real
exports). A field over ``csv``'s limit (131,072 characters) is refused: raising that limit is
process-wide state, and no ticket field is that long.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from deskpilot.rag.errors import CorruptDocument, DocumentTooLarge, EmptyDocument
from deskpilot.rag.parsing.document import Format, ParseLimits
from deskpilot.rag.parsing.text import decode_text

FieldValue = str | int | float | bool | None
Row = dict[str, FieldValue]

_WRAPPERS = ("records", "data", "items")
_DELIMITERS = (",", ";", "\t")
_QUOTED = re.compile(r'"[^"]*"')


@dataclass(frozen=True, slots=True)
class Table:
    rows: list[Row]
    columns: tuple[str, ...] | None  # CSV only: the header, to check named fields up front


def load_rows(content: bytes, fmt: Format, limits: ParseLimits) -> Table:
    text = decode_text(content, limits)
    if not text.strip():
        raise EmptyDocument("The file is empty.")
    if fmt is Format.CSV:
        return _csv_rows(text, limits)
    return Table([flatten(item) for item in _json_records(text, limits)], None)


def _too_many(limits: ParseLimits) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"The file holds more than {limits.max_records:,} records; split it into smaller files."
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_value(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _json_records(text: str, limits: ParseLimits) -> list[dict[str, Any]]:
    try:
        data = _json_value(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise CorruptDocument(
                f"The file is not valid JSON (line {exc.lineno:,}, column {exc.colno:,})."
            ) from None
        items = list(_json_lines(text, limits))
    except RecursionError:
        raise CorruptDocument("The JSON is nested too deeply to read.") from None
    except ValueError:
        raise CorruptDocument(
            "The file is not valid JSON: it holds a number that is too large or NaN/Infinity."
        ) from None
    else:
        items = _unwrap(data)
    if len(items) > limits.max_records:
        raise _too_many(limits)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise CorruptDocument(
                f"Record {number:,} is not a JSON object; each record must be an object with "
                "named fields."
            )
    return items


def _unwrap(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in _WRAPPERS:
            if isinstance(data.get(key), list):
                return list(data[key])
        return [data]
    raise CorruptDocument(
        'The JSON must be an array of objects, an object with a "records", "data" or '
        '"items" array, or JSON Lines.'
    )


def _json_lines(text: str, limits: ParseLimits) -> Iterator[Any]:
    count = 0
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        count += 1
        if count > limits.max_records:
            raise _too_many(limits)
        try:
            yield _json_value(line)
        except (ValueError, RecursionError):
            raise CorruptDocument(
                f"Line {line_number:,} is not valid JSON (the file was read as JSON Lines)."
            ) from None


def flatten(record: dict[str, Any]) -> Row:
    """``{"a": {"b": 1}, "tags": ["x", "y"]}`` -> ``{"a.b": 1, "tags": "x, y"}``."""
    flat: Row = {}
    stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [("", iter(record.items()))]
    while stack:
        prefix, items = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        name, value = prefix + item[0], item[1]
        if isinstance(value, dict):
            stack.append((name + ".", iter(value.items())))
        elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            stack.append((name + ".", ((str(i), v) for i, v in enumerate(value))))
        elif isinstance(value, list):
            flat[name] = ", ".join(render(v) for v in value if v is not None and v != "")
        else:
            flat[name] = value
    return flat


def render(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _delimiter(header_line: str) -> str:
    unquoted = _QUOTED.sub("", header_line)
    counts = [(unquoted.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    return max(counts)[2]


def _csv_rows(text: str, limits: ParseLimits) -> Table:
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text.split("\n", 1)[0]))
    try:
        header = _header(next(reader, []))
        rows: list[Row] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= limits.max_records:
                raise _too_many(limits)
            rows.append(_csv_row(header, cells, len(rows) + 1))
    except csv.Error as exc:
        reason = "a field is too long" if "field limit" in str(exc) else "it is malformed"
        raise CorruptDocument(
            f"The CSV file cannot be read near line {reader.line_num:,}: {reason}."
        ) from None
    return Table(rows, header)


def _header(cells: list[str]) -> tuple[str, ...]:
    names = [cell.strip() or f"column_{i}" for i, cell in enumerate(cells, start=1)]
    if not any(cell.strip() for cell in cells):
        raise EmptyDocument("The CSV file has no header row naming its columns.")
    first: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in first:
            raise CorruptDocument(
                f"Columns {first[name]} and {position} of the CSV header have the same name; "
                "each column needs its own."
            )
        first[name] = position
    return tuple(names)


def _csv_row(header: tuple[str, ...], cells: list[str], number: int) -> Row:
    if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
        raise CorruptDocument(
            f"Record {number:,} has {len(cells):,} values but the header names "
            f"{len(header):,} columns."
        )
    # A short row lacks its trailing fields (they are missing, not empty).
    return dict(zip(header, cells, strict=False))
