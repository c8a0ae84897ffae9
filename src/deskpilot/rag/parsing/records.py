"""JSON and CSV exports as many documents, one per record (resolved incidents, FAQ rows, ...).

A record's text: its title (when ``title_field`` names one) as a level-1 heading, then its text
fields. With exactly one text field named, that field's value is the body, read as plain
paragraphs (an article body); otherwise each field is one ``field: value`` line in a single
``record`` block, so the chunker keeps a short record whole and cuts a long one between fields.
Empty and null values are left out. A record with no text at all is skipped, not refused;
an upload in which every record is empty is ``EmptyDocument``.

``external_id`` is the dedup/update key, so it must be present, non-empty, at most 512
characters and unique within the upload. Error messages name fields (the tenant's own
configuration) and record numbers, never values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from deskpilot.rag.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    UnsupportedMediaType,
)
from deskpilot.rag.parsing.document import (
    DEFAULT_LIMITS,
    BlockKind,
    DocumentBuilder,
    Format,
    MetadataValue,
    ParsedDocument,
    ParseLimits,
    check_size,
    clean_title,
    clean_value,
)
from deskpilot.rag.parsing.tabular import FieldValue, Row, Table, load_rows, render
from deskpilot.rag.parsing.text import add_paragraphs

MAX_ID_CHARS = 512
MAX_METADATA_CHARS = 1_000
_BLANK_LINES = re.compile(r"\n\s*\n+")
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """Which fields play which part; empty ``text_fields`` means every field not used as id,
    title or metadata. Names are dotted paths for nested JSON (``assignee.name``)."""

    id_field: str | None = None
    title_field: str | None = None
    text_fields: tuple[str, ...] = ()
    metadata_fields: tuple[str, ...] = ()

    def named(self) -> tuple[str, ...]:
        single = tuple(f for f in (self.id_field, self.title_field) if f)
        return single + self.text_fields + self.metadata_fields


@dataclass(frozen=True, slots=True)
class Record:
    external_id: str | None
    title: str | None
    document: ParsedDocument
    metadata: Mapping[str, MetadataValue]


def split_records(
    content: bytes,
    fmt: Format,
    options: RecordOptions = RecordOptions(),
    *,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> list[Record]:
    if fmt not in (Format.JSON, Format.CSV):
        raise UnsupportedMediaType("Only JSON and CSV files can be split into records.")
    check_size(content, limits)
    table = load_rows(content, fmt, limits)
    _check_columns(table, options)
    records: list[Record] = []
    first_with_id: dict[str, int] = {}
    total_chars = 0
    for number, row in enumerate(table.rows, start=1):
        record = _record(row, number, fmt, options, limits)
        if record is None:
            continue
        if record.external_id is not None:
            seen = first_with_id.setdefault(record.external_id, number)
            if seen != number:
                raise CorruptDocument(
                    f"Records {seen:,} and {number:,} have the same {options.id_field!r} value; "
                    "the id field must be unique."
                )
        total_chars += len(record.document.text)
        if total_chars > limits.max_chars:
            raise DocumentTooLarge(
                f"The records' text is longer than the {limits.max_chars:,} characters allowed; "
                "split the file into smaller ones."
            )
        records.append(record)
    if not records:
        raise EmptyDocument("None of the records holds any text to index.")
    return records


def parse_records(content: bytes, fmt: Format, limits: ParseLimits) -> ParsedDocument:
    """The whole export as one document, one ``record`` block per record (every field as a
    ``field: value`` line): what ``parse`` returns for JSON and CSV."""
    table = load_rows(content, fmt, limits)
    builder = DocumentBuilder(fmt, limits)
    for row in table.rows:
        builder.add(BlockKind.RECORD, _field_lines(row, row))
    builder.metadata["record_count"] = len(table.rows)
    if table.columns is not None:
        builder.metadata["columns"] = len(table.columns)
    return builder.build(empty_reason="None of the records holds any text to index.")


def _check_columns(table: Table, options: RecordOptions) -> None:
    if table.columns is None:
        return
    for name in options.named():
        if name not in table.columns:
            raise CorruptDocument(f"The CSV header has no column {name!r}.")


def _record(
    row: Row, number: int, fmt: Format, options: RecordOptions, limits: ParseLimits
) -> Record | None:
    for name in options.named():
        if name not in row:
            raise CorruptDocument(f"Record {number:,} has no field {name!r}.")
    title = clean_title(render(row[options.title_field])) if options.title_field else None
    builder = DocumentBuilder(fmt, limits)
    if title:
        builder.add(BlockKind.HEADING, title, level=1)
    used = {options.id_field, options.title_field, *options.metadata_fields}
    if len(options.text_fields) == 1:
        add_paragraphs(builder, render(row[options.text_fields[0]]))
    else:
        names = options.text_fields or [name for name in row if name not in used]
        builder.add(BlockKind.RECORD, _field_lines(row, names))
    builder.metadata["record_number"] = number
    try:
        document = builder.build()
    except EmptyDocument:
        return None
    return Record(
        external_id=_external_id(row, options.id_field, number),
        title=title,
        document=document,
        metadata=MappingProxyType(
            {
                name: _metadata_value(row[name])
                for name in options.metadata_fields
                if row[name] is not None and row[name] != ""
            }
        ),
    )


def _field_lines(row: Row, names: Iterable[str]) -> str:
    lines = []
    for name in names:
        value = _BLANK_LINES.sub("\n", render(row[name]).strip())
        if value:
            lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _external_id(row: Row, field: str | None, number: int) -> str | None:
    if field is None:
        return None
    value = clean_value(render(row[field]))
    if not value:
        raise CorruptDocument(f"Record {number:,} has no value in its id field {field!r}.")
    if len(value) > MAX_ID_CHARS:
        raise CorruptDocument(
            f"Record {number:,} has an id longer than {MAX_ID_CHARS} characters in {field!r}."
        )
    return value


def _metadata_value(value: FieldValue) -> MetadataValue:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return clean_value(render(value))[:MAX_METADATA_CHARS]
