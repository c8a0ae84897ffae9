"""JSON and CSV exports read as one document per record, and as one document by ``parse``."""

from __future__ import annotations

import codecs
import json

import pytest

from deskpilot.rag.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    UnsupportedMediaType,
)
from deskpilot.rag.parsing import (
    BlockKind,
    Format,
    ParseLimits,
    Record,
    RecordOptions,
    parse,
    split_records,
)

INCIDENTS = [
    {
        "number": "INC001",
        "short": "VPN drops every hour",
        "resolution": "Raised the idle timeout.\n\n\n\nConfirmed with the user.",
        "priority": 2,
        "escalated": False,
        "assignee": {"name": "Ana", "team": {"name": "Network"}},
        "tags": ["vpn", "timeout"],
        "comments": [{"by": "Ana", "text": "Looking"}, {"by": "Bo", "text": "Fixed"}],
        "closed": None,
    },
    {
        "number": "INC002",
        "short": "Printer jams",
        "resolution": "Replaced the roller.",
        "priority": 4,
        "escalated": True,
        "assignee": {"name": "Bo", "team": {"name": "Desk"}},
        "tags": [],
        "comments": [],
        "closed": "2026-01-02",
    },
]


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def body(record: Record) -> str:
    return record.document.text


def test_json_records_render_every_remaining_field() -> None:
    records = split_records(as_json(INCIDENTS), Format.JSON, RecordOptions(id_field="number"))
    assert [r.external_id for r in records] == ["INC001", "INC002"]
    assert body(records[0]) == (
        "short: VPN drops every hour\n"
        "resolution: Raised the idle timeout.\nConfirmed with the user.\n"
        "priority: 2\n"
        "escalated: false\n"
        "assignee.name: Ana\n"
        "assignee.team.name: Network\n"
        "tags: vpn, timeout\n"
        "comments.0.by: Ana\n"
        "comments.0.text: Looking\n"
        "comments.1.by: Bo\n"
        "comments.1.text: Fixed"
    )
    assert [b.kind for b in records[0].document.blocks] == [BlockKind.RECORD]
    assert records[0].document.format is Format.JSON
    assert records[1].document.metadata == {"record_number": 2}
    assert "closed: 2026-01-02" in body(records[1])


def test_json_record_options_pick_title_text_and_metadata() -> None:
    options = RecordOptions(
        id_field="number",
        title_field="short",
        text_fields=("resolution",),
        metadata_fields=("priority", "escalated", "assignee.team.name", "tags", "closed"),
    )
    first, second = split_records(as_json({"records": INCIDENTS}), Format.JSON, options)
    assert first.title == "VPN drops every hour"
    assert first.document.title == "VPN drops every hour"
    # One text field: its value is the body, read as paragraphs under the title heading.
    assert body(first) == (
        "VPN drops every hour\n\nRaised the idle timeout.\n\nConfirmed with the user."
    )
    kinds = [b.kind for b in first.document.blocks]
    assert kinds == [BlockKind.HEADING, BlockKind.PARAGRAPH, BlockKind.PARAGRAPH]
    assert first.document.blocks[1].headings == ("VPN drops every hour",)
    assert first.metadata == {
        "priority": 2,
        "escalated": False,
        "assignee.team.name": "Network",
        "tags": "vpn, timeout",
    }
    assert second.metadata == {
        "priority": 4,
        "escalated": True,
        "assignee.team.name": "Desk",
        "closed": "2026-01-02",
    }


def test_two_text_fields_are_field_lines() -> None:
    options = RecordOptions(text_fields=("short", "resolution"))
    (record, _) = split_records(as_json(INCIDENTS), Format.JSON, options)
    assert body(record) == (
        "short: VPN drops every hour\n"
        "resolution: Raised the idle timeout.\nConfirmed with the user."
    )
    assert record.external_id is None
    assert record.title is None


@pytest.mark.parametrize("wrapper", ["records", "data", "items"])
def test_json_wrappers(wrapper: str) -> None:
    records = split_records(as_json({wrapper: [{"q": "a"}, {"q": "b"}]}), Format.JSON)
    assert [body(r) for r in records] == ["q: a", "q: b"]


def test_json_single_object_and_json_lines() -> None:
    assert [body(r) for r in split_records(b'{"q": "only"}', Format.JSON)] == ["q: only"]
    lines = b'{"q": "a"}\r\n\n{"q": "b"}\n{"q": "c", "n": 1.5}\n'
    assert [body(r) for r in split_records(lines, Format.JSON)] == ["q: a", "q: b", "q: c\nn: 1.5"]


def test_records_without_text_are_skipped_and_all_empty_is_refused() -> None:
    content = as_json([{"id": "1", "q": ""}, {"id": "2", "q": "kept"}, {"id": "3", "q": None}])
    records = split_records(content, Format.JSON, RecordOptions(id_field="id"))
    assert [(r.external_id, body(r)) for r in records] == [("2", "q: kept")]
    assert records[0].document.metadata == {"record_number": 2}
    with pytest.raises(EmptyDocument):
        split_records(as_json([{"q": " "}, {"q": None}]), Format.JSON)


@pytest.mark.parametrize(
    ("content", "options", "words"),
    [
        (
            as_json([{"id": 1, "q": "a"}, {"q": "b"}]),
            RecordOptions(id_field="id"),
            ["Record 2", "'id'"],
        ),
        (as_json([{"q": "a"}]), RecordOptions(text_fields=("body",)), ["Record 1", "'body'"]),
        (as_json([{"q": "a", "m": 1}]), RecordOptions(metadata_fields=("team",)), ["'team'"]),
        (as_json([{"id": "", "q": "a"}]), RecordOptions(id_field="id"), ["Record 1", "no value"]),
        (as_json([{"id": None, "q": "a"}]), RecordOptions(id_field="id"), ["no value"]),
        (as_json([{"id": "x" * 600, "q": "a"}]), RecordOptions(id_field="id"), ["longer than"]),
        (
            as_json([{"id": 7, "q": "a"}, {"id": "8", "q": "b"}, {"id": "7", "q": "c"}]),
            RecordOptions(id_field="id"),
            ["Records 1 and 3", "unique"],
        ),
        (b'[{"q": "a"}, "loose string"]', RecordOptions(), ["Record 2", "not a JSON object"]),
        (b'[{"q": "a"},\n {"q": ]', RecordOptions(), ["line 2, column 8"]),
        (b'{"q": "a"}\n{"q": \n', RecordOptions(), ["Line 2", "JSON Lines"]),
        (b'[{"q": NaN}]', RecordOptions(), ["NaN"]),
        (b'[{"n": ' + b"9" * 5000 + b"}]", RecordOptions(), ["too large"]),
        (b"[" * 100_000 + b"]" * 100_000, RecordOptions(), ["nested too deeply"]),
        (b'"just a string"', RecordOptions(), ["array of objects"]),
        (b"\xff\xfe\xfa not json", RecordOptions(), []),
    ],
)
def test_json_refusals_name_the_field_and_record(
    content: bytes, options: RecordOptions, words: list[str]
) -> None:
    with pytest.raises(CorruptDocument) as caught:
        split_records(content, Format.JSON, options)
    assert caught.value.status == 422
    for word in words:
        assert word in str(caught.value)


def test_record_and_size_limits() -> None:
    many = as_json([{"q": str(i)} for i in range(11)])
    with pytest.raises(DocumentTooLarge):
        split_records(many, Format.JSON, limits=ParseLimits(max_records=10))
    lines = b"\n".join(as_json({"q": i}) for i in range(11))
    with pytest.raises(DocumentTooLarge):
        split_records(lines, Format.JSON, limits=ParseLimits(max_records=10))
    rows = b"q\n" + b"\n".join(b"%d" % i for i in range(11))
    with pytest.raises(DocumentTooLarge):
        split_records(rows, Format.CSV, limits=ParseLimits(max_records=10))
    assert len(split_records(rows, Format.CSV, limits=ParseLimits(max_records=11))) == 11
    with pytest.raises(DocumentTooLarge):
        split_records(many, Format.JSON, limits=ParseLimits(max_bytes=20))
    with pytest.raises(DocumentTooLarge):  # the text of all records together
        split_records(many, Format.JSON, limits=ParseLimits(max_chars=30))


def test_metadata_values_stay_small_and_storable() -> None:
    content = (
        b'[{"q": "a", "big": ' + b"9" * 30 + b', "inf": 1e999, "long": "' + b"x" * 5000 + b'"}]'
    )
    (record,) = split_records(
        content,
        Format.JSON,
        RecordOptions(text_fields=("q",), metadata_fields=("big", "inf", "long")),
    )
    assert record.metadata["big"] == "9" * 30  # beyond 64 bits: kept as text
    assert record.metadata["inf"] == "inf"
    assert record.metadata["long"] == "x" * 1000


def test_lone_surrogates_and_controls_in_json_are_cleaned() -> None:
    (record,) = split_records(b'[{"q": "a\\ud800b\\u0000c"}]', Format.JSON)
    assert body(record) == "q: a\ufffdbc"


# -- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'id,title,body\r\n1,VPN,"Reset it, then retry"\r\n2,Mail,"Line one\r\nLine two"\r\n',
        b'id;title;body\n1;VPN;"Reset it, then retry"\n2;Mail;"Line one\nLine two"\n',
        b'id\ttitle\tbody\n1\tVPN\t"Reset it, then retry"\n2\tMail\t"Line one\nLine two"\n',
        codecs.BOM_UTF8
        + b'id,title,body\n1,VPN,"Reset it, then retry"\n\n2,Mail,"Line one\nLine two"',
        codecs.BOM_UTF16_LE
        + 'id;title;body\n1;VPN;"Reset it, then retry"\n2;Mail;"Line one\nLine two"\n'.encode(
            "utf-16-le"
        ),
    ],
)
def test_csv_dialects_and_encodings(content: bytes) -> None:
    options = RecordOptions(id_field="id", title_field="title")
    records = split_records(content, Format.CSV, options)
    assert [(r.external_id, r.title) for r in records] == [("1", "VPN"), ("2", "Mail")]
    assert body(records[0]) == "VPN\n\nbody: Reset it, then retry"
    assert body(records[1]) == "Mail\n\nbody: Line one\nLine two"
    assert records[1].document.format is Format.CSV


def test_csv_quoted_header_names_do_not_fool_the_delimiter_guess() -> None:
    content = b'"Name, full";Email\n"Doe, Jane";jane@example.com\n'
    (record,) = split_records(content, Format.CSV)
    assert body(record) == "Name, full: Doe, Jane\nEmail: jane@example.com"


def test_csv_short_rows_lack_fields_and_blank_header_cells_get_names() -> None:
    content = b"q,,notes\nfirst,x,n1\nsecond\n"
    records = split_records(content, Format.CSV)
    assert [body(r) for r in records] == ["q: first\ncolumn_2: x\nnotes: n1", "q: second"]
    with pytest.raises(CorruptDocument) as caught:
        split_records(content, Format.CSV, RecordOptions(text_fields=("notes",)))
    assert "Record 2" in str(caught.value)
    assert "'notes'" in str(caught.value)


def test_csv_trailing_empty_cells_are_tolerated() -> None:
    (record,) = split_records(b"q,a\nx,y,,\n", Format.CSV)
    assert body(record) == "q: x\na: y"


@pytest.mark.parametrize(
    ("content", "options", "error", "words"),
    [
        (b"q,a\n1,2\n", RecordOptions(id_field="id"), CorruptDocument, ["no column 'id'"]),
        (b"q,q\n1,2\n", RecordOptions(), CorruptDocument, ["Columns 1 and 2"]),
        (b"q,a\n1,2,3\n", RecordOptions(), CorruptDocument, ["Record 1", "3 values"]),
        (b'q\n"' + b"x" * 200_000 + b'"\n', RecordOptions(), CorruptDocument, ["too long"]),
        (b",,\n1,2,3\n", RecordOptions(), EmptyDocument, ["header"]),
        (b"\n\n  \n", RecordOptions(), EmptyDocument, []),
        (b"q\n\n\n", RecordOptions(), EmptyDocument, ["None of the records"]),
    ],
)
def test_csv_refusals(
    content: bytes, options: RecordOptions, error: type, words: list[str]
) -> None:
    with pytest.raises(error) as caught:
        split_records(content, Format.CSV, options)
    for word in words:
        assert word in str(caught.value)


def test_only_json_and_csv_split_into_records() -> None:
    with pytest.raises(UnsupportedMediaType):
        split_records(b"text", Format.TEXT)


def test_messages_name_fields_and_numbers_never_values() -> None:
    content = as_json([{"id": "SECRET-ID", "q": "TOPSECRET body"}, {"id": "SECRET-ID", "q": "b"}])
    with pytest.raises(CorruptDocument) as caught:
        split_records(content, Format.JSON, RecordOptions(id_field="id"))
    assert "SECRET" not in str(caught.value)


# -- parse: the whole export as one document ----------------------------------------------------


def test_parse_reads_an_export_as_one_document_with_a_block_per_record() -> None:
    doc = parse(b"id,q\n1,How do I reset?\n2,\n3,Why?\n", Format.CSV)
    assert doc.text == "id: 1\nq: How do I reset?\n\nid: 2\n\nid: 3\nq: Why?"
    assert [b.kind for b in doc.blocks] == [BlockKind.RECORD] * 3
    assert doc.metadata == {"record_count": 3, "columns": 2}
    doc = parse(as_json(INCIDENTS[:1]), Format.JSON)
    assert doc.text.startswith("number: INC001\nshort: VPN drops every hour\n")
    assert doc.metadata == {"record_count": 1}


def test_parse_refuses_an_export_without_text() -> None:
    with pytest.raises(EmptyDocument):
        parse(b"[{}, {}]", Format.JSON)
