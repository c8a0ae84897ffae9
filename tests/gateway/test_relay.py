"""The stream relay on its own: which chunks go out, what the StreamEnd says, and where a
failure lands (raised before the first chunk, reported after it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from deskpilot.gateway import Deployment, ErrorKind, ProviderError, StreamChunk, StreamEnd
from deskpilot.gateway.providers.classify import transport_error
from deskpilot.gateway.providers.openai_stream import relay
from deskpilot.gateway.providers.sse import ServerSentEvent
from deskpilot.gateway.schemas import StreamItem

DEPLOYMENT = Deployment(name="d", model="m", api_base="http://upstream.test/v1")
USAGE = {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> str:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"object": "chat.completion.chunk", "choices": [choice], **extra})


USAGE_ONLY = json.dumps({"object": "chat.completion.chunk", "choices": [], "usage": USAGE})


async def events(*items: str | BaseException) -> AsyncIterator[ServerSentEvent]:
    for item in items:
        if isinstance(item, BaseException):
            raise item
        event, _, data = item.rpartition("|") if item.startswith("error|") else ("", "", item)
        yield ServerSentEvent(data, event=event or "message")


async def run(*items: str | BaseException, pass_usage: bool = False) -> list[StreamItem]:
    stream = relay(events(*items), deployment=DEPLOYMENT, pass_usage=pass_usage)
    return [item async for item in stream]


def end_of(items: list[StreamItem]) -> StreamEnd:
    last = items[-1]
    assert isinstance(last, StreamEnd)
    return last


async def test_usage_is_taken_from_the_usage_chunk_which_is_consumed() -> None:
    items = await run(chunk("Hi"), chunk(finish="stop"), USAGE_ONLY, "[DONE]")
    assert [type(i) for i in items] == [StreamChunk, StreamChunk, StreamEnd]
    end = end_of(items)
    assert end.error is None
    assert end.finish_reason == "stop"
    assert end.usage is not None
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (9, 2)
    assert end.usage.cached_tokens == 4
    assert end.usage.from_provider


async def test_the_usage_chunk_goes_out_when_the_caller_asked_for_it() -> None:
    items = await run(chunk("Hi", finish="stop"), USAGE_ONLY, "[DONE]", pass_usage=True)
    assert isinstance(items[1], StreamChunk)
    assert items[1].data["usage"] == USAGE


async def test_a_clean_end_after_a_finish_reason_without_done_is_complete() -> None:
    end = end_of(await run(chunk("Hi"), chunk(finish="length")))
    assert end.error is None
    assert end.finish_reason == "length"
    assert end.usage is None


async def test_an_end_without_finish_or_done_is_a_cut() -> None:
    items = await run(chunk("Hi"))
    end = end_of(items)
    assert end.error is not None
    assert end.error.kind is ErrorKind.CONNECTION


async def test_a_transport_failure_after_chunks_ends_the_stream_with_it() -> None:
    # what ProviderHttp's events raise when the connection drops mid-body
    cut = transport_error(
        aiohttp.ClientPayloadError("Response payload is not completed"), DEPLOYMENT
    )
    items = await run(chunk("Hi"), chunk(" there"), cut)
    assert [i.data["choices"][0]["delta"] for i in items[:2] if isinstance(i, StreamChunk)] == [
        {"content": "Hi"},
        {"content": " there"},
    ]
    end = end_of(items)
    assert end.error is not None
    assert end.error.kind is ErrorKind.CONNECTION
    assert "ClientPayloadError" in end.error.message


async def test_an_error_event_mid_stream_is_reported_at_the_end() -> None:
    error = json.dumps({"error": {"message": "overloaded", "type": "server_error"}})
    end = end_of(await run(chunk("Hi"), "error|" + error))
    assert end.error is not None
    assert end.error.kind is ErrorKind.SERVER_ERROR
    assert "overloaded" in end.error.message


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (
            json.dumps({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}),
            "rate_limited",
        ),
        ("not json", "server_error"),
        ("[1, 2]", "server_error"),
    ],
)
async def test_failures_before_the_first_chunk_raise(first: str, kind: str) -> None:
    with pytest.raises(ProviderError) as raised:
        await run(first, chunk("never"))
    assert raised.value.kind == kind


async def test_a_timeout_before_the_first_chunk_raises() -> None:
    with pytest.raises(ProviderError) as raised:
        await run(transport_error(aiohttp.SocketTimeoutError("timed out"), DEPLOYMENT))
    assert raised.value.kind is ErrorKind.TIMEOUT


async def test_a_usage_only_chunk_is_not_a_delivered_chunk() -> None:
    with pytest.raises(ProviderError):  # nothing went out yet, so the failure still raises
        await run(USAGE_ONLY, transport_error(aiohttp.ClientOSError(104, "reset"), DEPLOYMENT))
