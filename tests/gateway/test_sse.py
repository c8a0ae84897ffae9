"""The SSE decoding a stream goes through, fed awkward framing: lines split across reads, CRLF
and CR endings, comments, multi-line data, a BOM, a last event without its blank line."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deskpilot.gateway.providers.sse import ServerSentEvent, SSEDecoder, aiter_events, aiter_lines


async def reads(*pieces: bytes) -> AsyncIterator[bytes]:
    """A response body delivered in exactly these reads."""
    for piece in pieces:
        yield piece


async def lines_of(*pieces: bytes) -> list[str]:
    return [line async for line in aiter_lines(reads(*pieces))]


async def events_of(*pieces: bytes) -> list[ServerSentEvent]:
    return [event async for event in aiter_events(aiter_lines(reads(*pieces)))]


def decode_all(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    found = [e for e in map(decoder.decode, lines) if e is not None]
    last = decoder.flush()
    return [*found, last] if last is not None else found


def test_a_blank_line_dispatches_and_comments_are_skipped() -> None:
    events = decode_all([": keep-alive", 'data: {"a":1}', "", ":another", "", "data: [DONE]", ""])
    assert events == [ServerSentEvent('{"a":1}'), ServerSentEvent("[DONE]")]


def test_field_syntax_follows_the_spec() -> None:
    events = decode_all(
        [
            "event: error",
            "data:no-space",
            "data:  two spaces keep one",
            "id: 7",
            "retry: 1000",
            "unknown-field-without-colon",
            "",
        ]
    )
    assert events == [ServerSentEvent("no-space\n two spaces keep one", event="error")]


def test_an_event_type_does_not_leak_into_the_next_event() -> None:
    events = decode_all(["event: error", "data: 1", "", "data: 2", ""])
    assert [e.event for e in events] == ["error", "message"]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode_all(["", "", "event: ping", "", ""]) == []


async def test_lines_split_across_reads_are_joined() -> None:
    events = await events_of(b"da", b'ta: {"n"', b":1}\n", b"\n", b'data: {"n":2}\n\n')
    assert [e.data for e in events] == ['{"n":1}', '{"n":2}']


@pytest.mark.parametrize(
    "pieces",
    [
        (b'data: {"n":1}\r\n\r\ndata: [DONE]\r\n\r\n',),
        (b'data: {"n":1}\r', b"\n\r", b"\ndata: [DONE]\r\n", b"\r\n"),  # CRLF split in two
        (b'data: {"n":1}\r\rdata: [DONE]\r\r',),  # bare CR endings
    ],
    ids=["crlf", "crlf-split-across-reads", "cr"],
)
async def test_crlf_and_cr_line_endings(pieces: tuple[bytes, ...]) -> None:
    events = await events_of(*pieces)
    assert [e.data for e in events] == ['{"n":1}', "[DONE]"]


async def test_a_multibyte_character_split_across_reads() -> None:
    text = 'data: {"content":"Café ☕"}\n\n'.encode()
    cut = text.index("☕".encode()) + 1  # inside the three bytes of the cup
    events = await events_of(text[:cut], text[cut:])
    assert events == [ServerSentEvent('{"content":"Café ☕"}')]


async def test_a_bom_comments_and_a_last_event_without_blank_line() -> None:
    events = await events_of(
        "\ufeff: hello\n".encode(), b"data: first\n\n", b": ping\n\n", b"data: last"
    )
    assert [e.data for e in events] == ["first", "last"]


@pytest.mark.parametrize(
    ("pieces", "lines"),
    [
        ((b"a\nb\r\nc\rd",), ["a", "b", "c", "d"]),
        ((b"a\r", b"\nb\n"), ["a", "b"]),  # CRLF split: one ending, not an empty line
        ((b"a\r", b"\r\n", b"b"), ["a", "", "b"]),
        ((b"\n\n",), ["", ""]),
        ((b"", b"ab", b"", b"c\n", b""), ["abc"]),
        ((b"trailing\r",), ["trailing"]),
    ],
)
async def test_line_endings_and_empty_reads(pieces: tuple[bytes, ...], lines: list[str]) -> None:
    assert await lines_of(*pieces) == lines


async def test_only_cr_and_lf_end_lines_and_invalid_utf8_is_replaced() -> None:
    # str.splitlines would also cut at U+2028, which JSON leaves unescaped inside strings
    assert await lines_of('data: {"t":"a\u2028b\x0cc"}\n'.encode(), b"\xff\n") == [
        'data: {"t":"a\u2028b\x0cc"}',
        "\ufffd",
    ]
