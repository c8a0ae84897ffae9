"""Uploaded files to documents: format detection, every parser, every refusal, hostile input.

Fixtures are built here: a PDF is written object by object (with a correct xref table), a DOCX
is a zip of hand-written XML parts, so each test shows exactly what the parser is given.
"""

from __future__ import annotations

import codecs
import io
import logging
import random
import zipfile
from xml.sax.saxutils import escape

import pytest
from pypdf import PdfReader, PdfWriter

from deskpilot.core.errors import DeskpilotError
from deskpilot.rag.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    UnsupportedMediaType,
)
from deskpilot.rag.parsing import (
    BlockKind,
    Format,
    ParsedDocument,
    ParseLimits,
    detect_format,
    parse,
)

REFUSALS = (CorruptDocument, DocumentTooLarge, EmptyDocument, UnsupportedMediaType)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def texts(doc: ParsedDocument) -> list[str]:
    return [doc.text[b.start : b.end] for b in doc.blocks]


def kinds(doc: ParsedDocument) -> list[BlockKind]:
    return [b.kind for b in doc.blocks]


def assert_well_formed(doc: ParsedDocument) -> None:
    """Blocks tile the text in order, separated by one blank line, with no stray characters."""
    position = 0
    for block in doc.blocks:
        assert doc.text[position : block.start] == ("\n\n" if position else "")
        assert block.end > block.start
        assert doc.text[block.start : block.end].strip()
        position = block.end
    assert position == len(doc.text)
    assert "\x00" not in doc.text
    assert "\r" not in doc.text


# -- fixture builders ---------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    pages: list[list[str]], *, title: str | None = None, count: int | None = None
) -> bytes:
    """A PDF with one Helvetica text line per string; ``count`` overrides the declared /Count."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    declared = len(pages) if count is None else count
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {declared} >>".encode()
    for i, lines in enumerate(pages):
        shown = " ".join(f"({_pdf_string(line)}) Tj T*" for line in lines)
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode("latin-1") if lines else b""
        objects[4 + 2 * i] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects[5 + 2 * i] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    info = ""
    if title is not None:
        number = max(objects) + 1
        objects[number] = f"<< /Title ({_pdf_string(title)}) /Author (Service Desk) >>".encode()
        info = f" /Info {number} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, size))
    out += f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypted_pdf(user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Secret runbook."]]))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def w_para(text: str, style: str | None = None, num: tuple[int, int] | None = None) -> str:
    properties = ""
    if style is not None:
        properties += f'<w:pStyle w:val="{style}"/>'
    if num is not None:
        properties += f'<w:numPr><w:ilvl w:val="{num[1]}"/><w:numId w:val="{num[0]}"/></w:numPr>'
    ppr = f"<w:pPr>{properties}</w:pPr>" if properties else ""
    return f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def w_table(rows: list[list[str]]) -> str:
    body = "".join(
        "<w:tr>" + "".join(f"<w:tc>{w_para(cell)}</w:tc>" for cell in row) + "</w:tr>"
        for row in rows
    )
    return f"<w:tbl>{body}</w:tbl>"


def document_xml(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{W_NS}" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        f"<w:body>{body}<w:sectPr/></w:body></w:document>"
    )


STYLES = f"""<w:styles xmlns:w="{W_NS}">
<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/>
  <w:basedOn w:val="berschrift1"/></w:style>
<w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="Runbook Step Title"/>
  <w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="ListBullet"><w:name w:val="List Bullet"/>
  <w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="Quote"><w:name w:val="Quote"/></w:style>
<w:style w:type="paragraph" w:styleId="Inherits"><w:name w:val="Sub Heading"/>
  <w:basedOn w:val="berschrift2"/></w:style>
<w:style w:type="paragraph" w:styleId="Loop"><w:name w:val="Loop"/>
  <w:basedOn w:val="Loop"/></w:style>
</w:styles>"""

NUMBERING = f"""<w:numbering xmlns:w="{W_NS}">
<w:abstractNum w:abstractNumId="10"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/></w:lvl>
  <w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum>
<w:abstractNum w:abstractNumId="20"><w:lvl w:ilvl="0"><w:numFmt w:val="decimal"/></w:lvl>
  <w:lvl w:ilvl="1"><w:numFmt w:val="lowerLetter"/></w:lvl></w:abstractNum>
<w:num w:numId="1"><w:abstractNumId w:val="10"/></w:num>
<w:num w:numId="2"><w:abstractNumId w:val="20"/></w:num>
</w:numbering>"""

CORE = """<cp:coreProperties
 xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Password policy</dc:title>
 <dc:creator>Security Office</dc:creator></cp:coreProperties>"""


def make_docx(body: str, *, parts: dict[str, str | bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", document_xml(body))
        for name, data in (parts or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


# -- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "media_type", "content", "expected"),
    [
        (None, "text/plain; charset=utf-8", b"hello", Format.TEXT),
        (None, "TEXT/MARKDOWN", b"# Title", Format.MARKDOWN),
        (None, "application/pdf", b"%PDF-1.7 ...", Format.PDF),
        (None, "application/x-ndjson", b'{"a": 1}', Format.JSON),
        (None, "text/x-log", b"boot ok", Format.TEXT),
        ("guide.md", None, b"# Title", Format.MARKDOWN),
        ("export.TSV", None, b"a\tb", Format.CSV),
        ("page.htm", "application/octet-stream", b"<p>x</p>", Format.HTML),
        ("notes.md", "text/plain", b"# Title", Format.MARKDOWN),  # browsers say text/plain
        ("tickets.csv", "application/vnd.ms-excel", b"a,b", Format.CSV),  # Windows says Excel
        ("a.txt", "text/html", b"<p>x</p>", Format.HTML),  # a specific type wins
        (None, None, b"%PDF-1.4\n...", Format.PDF),
        (None, None, b"\xef\xbb\xbf<!DOCTYPE html><html><p>x", Format.HTML),
        (None, None, b'  [{"id": 1}]\n', Format.JSON),
        (None, None, b"## Steps\n1. one", Format.MARKDOWN),
        (None, None, b"Plain words.", Format.TEXT),
        ("README", None, b"Plain words.", Format.TEXT),
    ],
)
def test_detects_format(
    filename: str | None, media_type: str | None, content: bytes, expected: Format
) -> None:
    assert detect_format(filename=filename, media_type=media_type, content=content) is expected


def test_sniffs_a_docx_by_its_document_part() -> None:
    content = make_docx(w_para("x"))
    assert detect_format(filename=None, media_type=None, content=content) is Format.DOCX
    assert detect_format(filename="a.docx", media_type=DOCX_TYPE, content=content) is Format.DOCX


@pytest.mark.parametrize(
    ("filename", "media_type", "content", "error", "words"),
    [
        (None, "image/png", b"\x89PNG\r\n", UnsupportedMediaType, "'image/png'"),
        ("report.doc", None, b"\xd0\xcf\x11\xe0" + bytes(200), UnsupportedMediaType, "'.doc'"),
        (None, None, bytes(range(256)) * 4, UnsupportedMediaType, "not accepted"),
        ("a.pdf", "application/pdf", b"<html>oops</html>", CorruptDocument, "PDF"),
        ("a.docx", None, b"%PDF-1.4 not a docx", CorruptDocument, "Word"),
        ("a.txt", "text/plain", b"%PDF-1.4 ...", CorruptDocument, "holds a PDF"),
        ("a.csv", None, b"PK\x03\x04....", CorruptDocument, "zip"),
        (None, None, b"", EmptyDocument, "empty"),
    ],
)
def test_detection_refuses_with_a_reason(
    filename: str | None, media_type: str | None, content: bytes, error: type, words: str
) -> None:
    with pytest.raises(error) as caught:
        detect_format(filename=filename, media_type=media_type, content=content)
    assert words in str(caught.value)


def test_unsupported_names_what_is_accepted() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        detect_format(filename="deck.pptx", media_type="application/zip", content=b"PK\x03\x04x")
    assert "PDF" in str(caught.value)
    assert "Markdown" in str(caught.value)
    assert caught.value.status == 415


def test_a_zip_that_is_not_a_word_document_is_unsupported() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(UnsupportedMediaType):
        detect_format(filename=None, media_type=None, content=out.getvalue())


# -- plain text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "Café menu.\n\nSecond para.".encode(),
        codecs.BOM_UTF8 + "Café menu.\n\nSecond para.".encode(),
        codecs.BOM_UTF16_LE + "Café menu.\n\nSecond para.".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "Café menu.\n\nSecond para.".encode("utf-16-be"),
        "Café menu.\n\nSecond para.".encode("utf-16-le"),  # no BOM: Windows tools
        "Café menu.\r\n\r\nSecond para.".encode("cp1252"),
        "\u201cCafé\u201d menu \u20ac5.\r\n\r\nSecond para.".encode("cp1252"),
        "Cafe\u0301 menu.\r\rSecond para.".encode(),  # decomposed é, old Mac line ends
    ],
)
def test_text_decodes_and_normalises(content: bytes) -> None:
    doc = parse(content, Format.TEXT)
    assert texts(doc) in (["Café menu.", "Second para."], ["“Café” menu €5.", "Second para."])
    assert doc.format is Format.TEXT
    assert_well_formed(doc)


def test_text_strips_nul_and_control_characters() -> None:
    doc = parse(b"Reset\x00 the\x07 token.\x1b\n\nNext.", Format.TEXT)
    assert doc.text == "Reset the token.\n\nNext."


def test_text_keeps_a_list_paragraph_as_a_list() -> None:
    doc = parse(b"Steps:\n\n- open the portal\n- click reset\n\nDone.", Format.TEXT)
    assert kinds(doc) == [BlockKind.PARAGRAPH, BlockKind.LIST, BlockKind.PARAGRAPH]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", EmptyDocument),
        (b" \n\t\r\n  ", EmptyDocument),
        (b"\x00\x00\x00", EmptyDocument),
        (b"\xff\xfe\x00\xd8", CorruptDocument),  # UTF-16 BOM, then a lone surrogate
        (b"\xef\xbb\xbf\xff\xfe", CorruptDocument),  # UTF-8 BOM, then invalid UTF-8
        (b"abc\x00\xff\xfe\x9c", CorruptDocument),  # NUL and not UTF-8: binary
        (bytes(range(1, 9)) * 300 + b"text", CorruptDocument),  # decodes, but is binary
    ],
)
def test_text_refusals(content: bytes, error: type) -> None:
    with pytest.raises(error):
        parse(content, Format.TEXT)


def test_size_limits() -> None:
    with pytest.raises(DocumentTooLarge) as caught:
        parse(b"x" * 101, Format.TEXT, limits=ParseLimits(max_bytes=100))
    assert caught.value.status == 413
    with pytest.raises(DocumentTooLarge):
        parse(b"word " * 100, Format.TEXT, limits=ParseLimits(max_chars=100))
    # A DOCX's text is only known once built: the cap holds there too.
    docx = make_docx(w_para("word " * 10) * 30)
    assert len(parse(docx, Format.DOCX).text) > 1_000
    with pytest.raises(DocumentTooLarge):
        parse(docx, Format.DOCX, limits=ParseLimits(max_chars=1_000))


# -- Markdown -----------------------------------------------------------------------------------

GUIDE = b"""---
title: VPN guide
owner: netops
tags: [vpn, remote]
---
# VPN access

Use **the client** and the [portal](https://vpn.example.com) or [this page](#setup).
Call `vpn --reset` if stuck.

## Install

1. Download the client.
2. Run the installer:
   ```bash
   sudo ./install.sh --yes   # **not** bold

   echo done
   ```
3. Reboot.
   - check the tray icon
   - sign in

| Setting | Value |
|---------|:-----:|
| Gateway | `gw1` |
| Port    | 443   |

> **Note:** the VPN drops
after 8 hours.

Troubleshooting
---------------

    vpn --diagnose
    vpn --log

### Logs

Text under a level 3 heading.
~~~
unclosed fence keeps the rest
"""


def test_markdown_structure() -> None:
    doc = parse(GUIDE, Format.MARKDOWN)
    assert_well_formed(doc)
    assert kinds(doc) == [
        BlockKind.HEADING,
        BlockKind.PARAGRAPH,
        BlockKind.HEADING,
        BlockKind.LIST,
        BlockKind.TABLE,
        BlockKind.QUOTE,
        BlockKind.HEADING,
        BlockKind.CODE,
        BlockKind.HEADING,
        BlockKind.PARAGRAPH,
        BlockKind.CODE,
    ]
    blocks = texts(doc)
    assert blocks[0] == "VPN access"
    assert blocks[1] == (
        "Use the client and the portal (https://vpn.example.com) or this page.\n"
        "Call vpn --reset if stuck."
    )
    assert blocks[3] == (
        "1. Download the client.\n2. Run the installer:\n"
        "   sudo ./install.sh --yes   # **not** bold\n   echo done\n"
        "3. Reboot.\n   - check the tray icon\n   - sign in"
    )
    assert blocks[4] == "Setting | Value\nGateway | gw1\nPort | 443"
    assert blocks[5] == "Note: the VPN drops\nafter 8 hours."
    assert blocks[7] == "vpn --diagnose\nvpn --log"
    assert blocks[10] == "unclosed fence keeps the rest"


def test_markdown_headings_levels_paths_and_title() -> None:
    doc = parse(GUIDE, Format.MARKDOWN)
    headings = [(b.level, doc.text[b.start : b.end], b.headings) for b in doc.blocks if b.level]
    assert headings == [
        (1, "VPN access", ("VPN access",)),
        (2, "Install", ("VPN access", "Install")),
        (2, "Troubleshooting", ("VPN access", "Troubleshooting")),
        (3, "Logs", ("VPN access", "Troubleshooting", "Logs")),
    ]
    assert doc.blocks[4].headings == ("VPN access", "Install")  # the table
    assert doc.title == "VPN access"
    assert doc.metadata == {"title": "VPN guide", "owner": "netops"}


def test_markdown_title_falls_back_to_front_matter() -> None:
    doc = parse(b"---\ntitle: 'Printer FAQ'\n---\n## Jams\n\nOpen tray 2.", Format.MARKDOWN)
    assert doc.title == "Printer FAQ"
    assert texts(doc) == ["Jams", "Open tray 2."]


def test_markdown_setext_headings() -> None:
    doc = parse(b"Main title\n==========\n\nText.\n\nPart\n---\n\nMore.", Format.MARKDOWN)
    assert [(b.kind, b.level) for b in doc.blocks if b.level] == [
        (BlockKind.HEADING, 1),
        (BlockKind.HEADING, 2),
    ]
    assert doc.title == "Main title"
    assert doc.blocks[-1].headings == ("Main title", "Part")


def test_markdown_inline_syntax_is_reduced_to_text() -> None:
    source = (
        b"**bold *it* more**, ~~old~~, snake_case_name, 2 * 3 * 4, \\*literal\\*, "
        b"<kbd>Ctrl</kbd>+C, <https://help.example.com>, ![diagram](d.png), "
        b"[ref link][1], AT&amp;T <!-- note -->"
    )
    expected = (
        "bold it more, old, snake_case_name, 2 * 3 * 4, *literal*, Ctrl+C, "
        "https://help.example.com, diagram, ref link, AT&T"
    )
    assert parse(source, Format.MARKDOWN).text == expected


def test_markdown_fenced_code_is_verbatim() -> None:
    doc = parse(b"```\n  **x** [a](b)\n\n  y\n```\nafter", Format.MARKDOWN)
    assert texts(doc) == ["  **x** [a](b)\n\n  y", "after"]
    assert kinds(doc) == [BlockKind.CODE, BlockKind.PARAGRAPH]


def test_markdown_thematic_breaks_and_comments_are_not_text() -> None:
    doc = parse(b"One.\n\n***\n\n<!-- hidden\nnote -->\nTwo.", Format.MARKDOWN)
    assert texts(doc) == ["One.", "Two."]


def test_markdown_table_and_list_interrupt_a_paragraph() -> None:
    doc = parse(b"Intro line\n| a | b |\n|---|---|\n| 1 | 2 |\nMore\n- item", Format.MARKDOWN)
    assert texts(doc) == ["Intro line", "a | b\n1 | 2", "More", "- item"]
    assert kinds(doc) == [BlockKind.PARAGRAPH, BlockKind.TABLE, BlockKind.PARAGRAPH, BlockKind.LIST]


def test_markdown_loose_list_is_one_block() -> None:
    doc = parse(b"- one\n\n- two\n\n  more of two\n\nAfter.", Format.MARKDOWN)
    assert texts(doc) == ["- one\n- two\n  more of two", "After."]


# -- HTML ---------------------------------------------------------------------------------------

PAGE = b"""<!DOCTYPE html>
<html lang="en-GB"><head><title>Reset | Help centre</title>
<style>p { color: red }</style><script>alert("x")</script></head>
<body><nav><a href="/">Home</a> Menu</nav>
<svg><title>icon</title><text>svg text</text></svg>
<h1>Reset your   password</h1>
<p>Go to the <b>portal</b>&nbsp;and click &ldquo;Forgot&rdquo;.<br>Then wait.</p>
<div hidden>secret <p>hidden</p></div>
<h2>Steps</h2>
<ol><li>Open <em>Settings</em><ul><li>Security</li><li>Passwords</li></ul></li>
<li>Choose reset</li></ol>
<pre>  reset --user alice
  exit</pre>
<table><tr><th>Code</th><th>Meaning</th></tr>
<tr><td>E1</td><td><p>Locked</p><p>out</p></td></tr></table>
<blockquote>Never share it.</blockquote>
<p>Unclosed paragraph
<p>Another &amp; last
</body></html>"""


def test_html_structure() -> None:
    doc = parse(PAGE, Format.HTML)
    assert_well_formed(doc)
    assert texts(doc) == [
        "Reset your password",
        "Go to the portal\u00a0and click \u201cForgot\u201d.\nThen wait.",
        "Steps",
        "1. Open Settings\n  - Security\n  - Passwords\n2. Choose reset",
        "  reset --user alice\n  exit",
        "Code | Meaning\nE1 | Locked out",
        "Never share it.",
        "Unclosed paragraph",
        "Another & last",
    ]
    assert kinds(doc)[3:7] == [BlockKind.LIST, BlockKind.CODE, BlockKind.TABLE, BlockKind.QUOTE]
    assert doc.blocks[3].headings == ("Reset your password", "Steps")
    assert doc.title == "Reset your password"
    assert doc.metadata == {"language": "en-GB"}


def test_html_title_tag_when_no_h1_and_head_without_closing_tag() -> None:
    doc = parse(b"<html><head><title>Help</title><meta x><body><p>Body text.", Format.HTML)
    assert doc.title == "Help"
    assert texts(doc) == ["Body text."]


def test_html_ignores_svg_titles() -> None:
    doc = parse(b"<body><svg><title>icon</title></svg><p>Text.</p></body>", Format.HTML)
    assert doc.title is None
    assert texts(doc) == ["Text."]


def test_html_with_only_script_is_empty() -> None:
    with pytest.raises(EmptyDocument):
        parse(b"<script>var a = '<p>not text</p>';</script><style>p{}</style>", Format.HTML)


def test_html_deep_nesting_and_unclosed_tags() -> None:
    content = b"<div>" * 50_000 + b"<p>deep text" + b"<span><b>" * 10_000
    assert texts(parse(content, Format.HTML)) == ["deep text"]


@pytest.mark.parametrize(
    "content",
    [
        # Each unterminated construct made CPython's tokenizer rescan to the end on close:
        # quadratic, minutes for a few hundred kilobytes.
        b"<p>kept</p>" + b"<a b='>'" * 50_000,
        b"<p>kept</p>" + b"</" * 100_000,
        b"<p>kept</p><![if !supportLists]>" + b"<!--" * 50_000,
        b"<p>kept</p><![x[ raises AssertionError in html.parser",
    ],
)
def test_html_unterminated_constructs_end_the_text(content: bytes) -> None:
    assert texts(parse(content, Format.HTML)) == ["kept"]


def test_html_office_conditionals_and_trailing_entity() -> None:
    content = b"<p><![if !supportLists]>1.<![endif]> Step</p><p>Fish &amp chips &amp"
    assert texts(parse(content, Format.HTML)) == ["1. Step", "Fish & chips &"]


def test_html_list_keeps_its_place_around_a_nested_block() -> None:
    doc = parse(b"<ul><li>one</li><li>two<pre>code</pre></li><li>three</li></ul>", Format.HTML)
    assert texts(doc) == ["- one\n- two", "code", "- three"]


# -- PDF ----------------------------------------------------------------------------------------


def test_pdf_text_with_pages_title_and_author() -> None:
    content = make_pdf(
        [["Printer setup guide.", "Plug in the cable."], [], ["Page three (end)."]],
        title="Printer guide",
    )
    doc = parse(content, Format.PDF)
    assert_well_formed(doc)
    assert texts(doc) == ["Printer setup guide.\nPlug in the cable.", "Page three (end)."]
    assert [b.page for b in doc.blocks] == [1, 3]
    assert doc.title == "Printer guide"
    assert doc.metadata == {"page_count": 3, "author": "Service Desk"}


def test_pdf_without_text_layer_is_empty_and_says_why() -> None:
    with pytest.raises(EmptyDocument) as caught:
        parse(make_pdf([[], []]), Format.PDF)
    assert "scan" in str(caught.value)


def test_pdf_needing_a_password_is_refused() -> None:
    with pytest.raises(CorruptDocument) as caught:
        parse(encrypted_pdf("s3cret"), Format.PDF)
    assert "password" in str(caught.value)


def test_pdf_encrypted_with_an_empty_password_is_read() -> None:
    assert texts(parse(encrypted_pdf(""), Format.PDF)) == ["Secret runbook."]


def test_pdf_page_cap_uses_the_declared_count_before_walking_pages() -> None:
    with pytest.raises(DocumentTooLarge) as caught:
        parse(make_pdf([["x"]], count=10_000_000), Format.PDF)
    assert "10,000,000 pages" in str(caught.value)
    with pytest.raises(DocumentTooLarge):
        parse(make_pdf([["a"], ["b"], ["c"]]), Format.PDF, limits=ParseLimits(max_pages=2))


@pytest.mark.parametrize(
    "content",
    [
        b"%PDF-1.4\n",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n%%EOF",
        make_pdf([["Hello."]])[:200],
        make_pdf([["Hello."]]).replace(b"/Pages 2 0 R", b"/Pages 99 0 R"),
        make_pdf([["Hello."]]).replace(b"/Kids [4 0 R]", b"/Kids [2 0 R]"),  # a cycle
    ],
)
def test_damaged_pdfs_are_corrupt(content: bytes) -> None:
    with pytest.raises(CorruptDocument):
        parse(content, Format.PDF)


def test_pdf_repairs_are_not_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    # Wrong xref offsets: pypdf repairs them and would log that at WARNING.
    content = make_pdf([["Repaired text."]]).replace(b"0000000009 00000 n", b"0000000001 00000 n")
    with caplog.at_level(logging.DEBUG, logger="pypdf"):
        logging.getLogger("pypdf").setLevel(logging.NOTSET)
        doc = parse(content, Format.PDF)
    assert texts(doc) == ["Repaired text."]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- DOCX ---------------------------------------------------------------------------------------


def test_docx_structure() -> None:
    body = "".join(
        [
            w_para("Password policy", "Title"),
            w_para("Scope", "berschrift1"),  # a German "Überschrift 1": found by style name
            w_para("Applies to all staff."),
            w_para("Rules", "berschrift2"),
            w_para("Length", "Custom"),  # outline level 2: a level-3 heading
            w_para("At least 12 characters", "ListBullet"),  # numbered through its style
            w_para("No reuse", num=(1, 0)),
            w_para("Not even old ones", num=(1, 1)),
            w_para("First step", num=(2, 0)),
            w_para("Sub step", num=(2, 1)),
            w_para("Second step", num=(2, 0)),
            w_para("Sub step again", num=(2, 1)),
            w_para("Strong passwords save weekends.", "Quote"),
            w_table([["Role", "Rotation"], ["Admin", "90 days"]]),
            w_para("   "),  # spacing paragraphs are not text
            w_para("Looping style is harmless.", "Loop"),
            w_para("Direct heading", "Heading2"),  # no styles.xml entry: the id decides
            w_para("Inherited heading", "Inherits"),  # a heading through basedOn
        ]
    )
    parts: dict[str, str | bytes] = {
        "word/styles.xml": STYLES,
        "word/numbering.xml": NUMBERING,
        "docProps/core.xml": CORE,
    }
    doc = parse(make_docx(body, parts=parts), Format.DOCX)
    assert_well_formed(doc)
    assert texts(doc) == [
        "Password policy",
        "Scope",
        "Applies to all staff.",
        "Rules",
        "Length",
        "- At least 12 characters\n- No reuse\n  - Not even old ones\n"
        "1. First step\n  1. Sub step\n2. Second step\n  1. Sub step again",
        "Strong passwords save weekends.",
        "Role | Rotation\nAdmin | 90 days",
        "Looping style is harmless.",
        "Direct heading",
        "Inherited heading",
    ]
    levels = [(b.kind, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert [level for _, level in levels] == [1, 1, 2, 3, 2, 2]
    assert doc.blocks[5].kind is BlockKind.LIST
    assert doc.blocks[5].headings == ("Scope", "Rules", "Length")
    assert doc.blocks[6].kind is BlockKind.QUOTE
    assert doc.blocks[7].kind is BlockKind.TABLE
    assert doc.title == "Password policy"
    assert doc.metadata == {"author": "Security Office"}


def test_docx_runs_tabs_breaks_and_what_is_not_text() -> None:
    paragraph = (
        "<w:p><w:r><w:t>Call</w:t></w:r><w:r><w:tab/><w:t>ext 42</w:t><w:br/></w:r>"
        "<w:del><w:r><w:delText>deleted words</w:delText></w:r></w:del>"
        "<w:r><w:instrText>HYPERLINK x</w:instrText></w:r>"
        "<w:r><mc:AlternateContent><mc:Choice><w:t>box</w:t></mc:Choice>"
        "<mc:Fallback><w:t>box copy</w:t></mc:Fallback></mc:AlternateContent></w:r>"
        "<w:ins><w:r><w:t> added</w:t></w:r></w:ins></w:p>"
    )
    sdt = "<w:sdt><w:sdtContent>" * 500 + w_para("In a control.") + "</w:sdtContent></w:sdt>" * 500
    doc = parse(make_docx(paragraph + sdt), Format.DOCX)
    assert texts(doc) == ["Call\text 42\nbox added", "In a control."]


def test_docx_title_from_core_properties_when_no_heading() -> None:
    doc = parse(make_docx(w_para("Body."), parts={"docProps/core.xml": CORE}), Format.DOCX)
    assert doc.title == "Password policy"


BOMB_DTD = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<w:document xmlns:w="{ns}"><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="{ns}"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"""


def _docx_with_document(document: str | bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", document)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"PK\x03\x04 not really a zip", CorruptDocument),
        (make_docx(w_para("x"))[:-30], CorruptDocument),  # truncated central directory
        (_docx_with_document(BOMB_DTD.format(ns=W_NS)), CorruptDocument),
        (_docx_with_document(EXTERNAL.format(ns=W_NS)), CorruptDocument),
        (_docx_with_document("<w:document><unclosed>"), CorruptDocument),
        (
            _docx_with_document(document_xml(w_para("x")).replace("?>", "?><!DOCTYPE d>", 1)),
            CorruptDocument,
        ),
        (_docx_with_document(document_xml("")), EmptyDocument),
    ],
)
def test_docx_refusals(content: bytes, error: type) -> None:
    with pytest.raises(error):
        parse(content, Format.DOCX)


def test_docx_without_a_document_part_is_corrupt() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("content.xml", "<x/>")
    with pytest.raises(CorruptDocument) as caught:
        parse(out.getvalue(), Format.DOCX)
    assert "not a Word document" in str(caught.value)


def test_docx_zip_bomb_is_refused_without_inflating_it() -> None:
    padding = "<w:p/>" * 400_000  # 2.4 MB of XML that deflates to a few KB
    content = make_docx(w_para("x") + padding)
    assert len(content) < 50_000
    with pytest.raises(DocumentTooLarge) as caught:
        parse(content, Format.DOCX, limits=ParseLimits(max_unzipped_bytes=2**20))
    assert "unzipped" in str(caught.value)


def test_docx_budget_covers_all_parts_together() -> None:
    half = "<w:p/>" * 100_000  # 600 KB of XML each
    parts: dict[str, str | bytes] = {
        "word/styles.xml": f'<w:styles xmlns:w="{W_NS}">{half}</w:styles>'
    }
    content = make_docx(w_para("x") + half, parts=parts)
    assert parse(content, Format.DOCX).text == "x"
    with pytest.raises(DocumentTooLarge):
        parse(content, Format.DOCX, limits=ParseLimits(max_unzipped_bytes=2**20))


def test_docx_zip_that_lies_about_sizes_is_still_capped() -> None:
    content = make_docx(w_para("x") + "<w:p/>" * 400_000)
    # Rewrite the declared uncompressed size in the central directory to 100 bytes.
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo("word/document.xml")
    lying = content.replace(info.file_size.to_bytes(4, "little"), (100).to_bytes(4, "little"))
    with pytest.raises((DocumentTooLarge, CorruptDocument)):
        parse(lying, Format.DOCX, limits=ParseLimits(max_unzipped_bytes=2**20))


# -- dispatch and hostile input -----------------------------------------------------------------


def test_parse_uses_the_given_parsers() -> None:
    def shout(content: bytes, limits: ParseLimits) -> ParsedDocument:
        return parse(content.upper(), Format.TEXT, limits=limits)

    assert parse(b"quiet", Format.PDF, parsers={Format.PDF: shout}).text == "QUIET"
    with pytest.raises(UnsupportedMediaType):
        parse(b"quiet", Format.DOCX, parsers={Format.PDF: shout})


def _valid_samples() -> dict[Format, bytes]:
    return {
        Format.TEXT: b"Line one.\r\n\r\nLine two \xe2\x80\x94 done.",
        Format.MARKDOWN: GUIDE,
        Format.HTML: PAGE,
        Format.PDF: make_pdf([["Hello (world)."], ["Second page."]], title="T"),
        Format.DOCX: make_docx(
            w_para("Heading", "Heading1") + w_para("Item", num=(2, 0)) + w_table([["a", "b"]]),
            parts={"word/styles.xml": STYLES, "word/numbering.xml": NUMBERING},
        ),
        Format.JSON: b'[{"id": 1, "t": "x", "n": {"a": [1, 2]}}, {"id": 2, "t": "y"}]',
        Format.CSV: b'id;title;body\n1;A;"multi\nline"\n2;B;text\n',
    }


def _mutations(content: bytes, rng: random.Random) -> list[bytes]:
    variants = [content[: rng.randrange(len(content))] for _ in range(6)]
    for _ in range(10):
        data = bytearray(content)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        variants.append(bytes(data))
    middle = len(content) // 2
    variants.append(content[:middle] + b"\x00" * 64 + content[middle:])
    variants.append(content[:middle] + content[middle:] * 3)
    return variants


def _outcome(content: bytes, fmt: Format) -> ParsedDocument | DeskpilotError:
    try:
        return parse(content, fmt)
    except REFUSALS as refusal:
        return refusal


@pytest.mark.parametrize("fmt", list(Format))
def test_every_mutated_upload_ends_in_a_document_or_a_refusal(fmt: Format) -> None:
    rng = random.Random(f"deskpilot-{fmt.value}")  # noqa: S311 - reproducible test data
    for content in _mutations(_valid_samples()[fmt], rng):
        outcome = _outcome(content, fmt)
        if isinstance(outcome, ParsedDocument):
            assert_well_formed(outcome)
        else:
            assert outcome.status in (413, 415, 422)


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.MARKDOWN, Format.HTML])
def test_hostile_text_shapes_parse(fmt: Format) -> None:
    nasty = [
        b"*a" * 50_000,  # unclosed emphasis, one huge line
        b"[" * 100_000 + b"](" * 1_000,
        b"- x\n" + b"\n" * 100_000 + b"y",  # a blank run inside a list
        b"<" * 50_000 + b"!--" * 5_000,
        b"> " * 30_000,
        b"- x" + b" " * 100_000 + b"y\n" * 3,  # a trailing-space regex would be quadratic here
        b"**" + b"a " * 20_000 + b"\n\n" + b"<!--" * 20_000,
        b"\xef\xbb\xbf" + b"ok\r\n\x00" * 5 + b"fine\r\n" * 1_000,
    ]
    for content in nasty:
        try:
            doc = parse(content, fmt)
        except EmptyDocument:
            continue
        assert_well_formed(doc)


def test_refusal_messages_never_quote_the_document() -> None:
    secret = b"TOPSECRET-4242"
    uploads = [
        (secret + b"\x00\xff" * 50, Format.TEXT),
        (b"%PDF-1.4\n" + secret, Format.PDF),
        (b"PK\x03\x04" + secret, Format.DOCX),
        (b'{"a": "' + secret + b'"', Format.JSON),
    ]
    for content, fmt in uploads:
        with pytest.raises(REFUSALS) as caught:
            parse(content, fmt)
        assert "TOPSECRET" not in str(caught.value)
