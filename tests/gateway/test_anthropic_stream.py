"""Anthropic streams translated to OpenAI chunks: against the loopback upstream, and (for the
events it cannot script: ``ping``, ``error`` mid-stream) from hand-written events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from deskpilot.gateway import (
    AnthropicProvider,
    Deployment,
    ErrorKind,
    ProviderError,
    StreamChunk,
    StreamEnd,
    StreamItem,
)
from deskpilot.gateway.providers.anthropic_stream import translate
from deskpilot.gateway.providers.sse import ServerSentEvent
from tests.gateway.support import MESSAGES, SHORT_TIMEOUT, deployment_for
from tests.upstream.server import (
    CutStream,
    Ok,
    RateLimited,
    ServerError,
    SlowFirstToken,
    ToolCall,
    Upstream,
)


def claude(up: Upstream, **overrides: Any) -> Deployment:
    fields = {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_base": up.anthropic_base}
    return deployment_for(up, **{**fields, **overrides})


@pytest.fixture
async def anthropic() -> AsyncIterator[AnthropicProvider]:
    instance = AnthropicProvider()
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture
def deployment(up: Upstream) -> Deployment:
    return claude(up)


def split(items: list[StreamItem]) -> tuple[list[dict[str, Any]], StreamEnd]:
    *chunks, end = items
    assert isinstance(end, StreamEnd)
    assert all(isinstance(c, StreamChunk) for c in chunks)
    return [c.data for c in chunks if isinstance(c, StreamChunk)], end


async def collect(
    provider: AnthropicProvider, deployment: Deployment, body: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], StreamEnd]:
    return split([item async for item in provider.stream(body, deployment=deployment)])


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def tool_deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        call
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls", [])
    ]


async def test_text_streams_as_openai_chunks(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="Restart the print spooler.", prompt_tokens=50, completion_tokens=4))
    chunks, end = await collect(anthropic, deployment, {"messages": MESSAGES, "model": "alias"})
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text_of(chunks) == "Restart the print spooler."
    assert len(chunks) > 3  # word by word, not one block
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["id"].startswith("msg_")
    assert {c["model"] for c in chunks} == {"claude-sonnet-4-5"}
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all("usage" not in c for c in chunks)  # not asked for
    assert (end.error, end.finish_reason) == (None, "stop")
    assert end.usage is not None
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (50, 4)
    assert end.usage.from_provider
    request = up.requests[-1]
    assert request.json["stream"] is True
    assert request.json["model"] == "claude-sonnet-4-5"
    assert "stream_options" not in request.json
    assert request.headers["accept"] == "text/event-stream"


async def test_include_usage_adds_the_openai_usage_chunk(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="Done.", prompt_tokens=30, completion_tokens=1))
    body = {"messages": MESSAGES, "stream_options": {"include_usage": True}}
    chunks, end = await collect(anthropic, deployment, body)
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 1,
        "total_tokens": 31,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert last["id"] == chunks[0]["id"]
    assert end.usage is not None
    assert end.usage.total_tokens == 31


async def test_no_usage_reported_means_none(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="fine", usage=False))
    body = {"messages": MESSAGES, "stream_options": {"include_usage": True}}
    chunks, end = await collect(anthropic, deployment, body)
    assert text_of(chunks) == "fine"
    assert all(c["choices"] for c in chunks)  # no usage chunk to make up
    assert (end.error, end.usage) == (None, None)


async def test_tool_calls_stream_with_their_arguments_in_pieces(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    arguments = {"id": "INC0042", "note": "user cannot print from the third floor"}
    up.script(ToolCall(name="lookup_ticket", arguments=arguments, content="Checking."))
    chunks, end = await collect(anthropic, deployment, {"messages": MESSAGES})
    assert text_of(chunks) == "Checking."
    first, *rest = tool_deltas(chunks)
    assert first["index"] == 0
    assert first["id"].startswith("toolu_")
    assert first["type"] == "function"
    assert first["function"] == {"name": "lookup_ticket", "arguments": ""}
    assert len(rest) > 1
    assert all(set(d) == {"index", "function"} and d["index"] == 0 for d in rest)
    assert json.loads("".join(d["function"]["arguments"] for d in rest)) == arguments
    assert end.finish_reason == "tool_calls"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_cut_stream_ends_with_an_error_after_the_delivered_chunks(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(CutStream(after_chunks=2))
    body = {"messages": MESSAGES, "stream_options": {"include_usage": True}}
    chunks, end = await collect(anthropic, deployment, body)
    assert len(chunks) == 3  # the role chunk and two pieces of content, no usage chunk
    assert text_of(chunks) == "Hello from"
    assert end.error is not None
    assert end.error.kind is ErrorKind.CONNECTION
    assert (end.usage, end.finish_reason) == (None, None)


@pytest.mark.parametrize(
    ("behaviour", "kind", "retry_after"),
    [
        (RateLimited(retry_after=2), ErrorKind.RATE_LIMITED, 2.0),
        (ServerError(529), ErrorKind.SERVER_ERROR, None),
    ],
)
async def test_errors_before_the_first_chunk_raise(
    up: Upstream,
    anthropic: AnthropicProvider,
    deployment: Deployment,
    behaviour: RateLimited | ServerError,
    kind: ErrorKind,
    retry_after: float | None,
) -> None:
    up.script(behaviour)
    with pytest.raises(ProviderError) as raised:
        await collect(anthropic, deployment, {"messages": MESSAGES})
    assert (raised.value.kind, raised.value.retry_after) == (kind, retry_after)
    assert raised.value.retryable


async def test_a_slow_first_token_beyond_the_read_timeout_raises(
    up: Upstream, anthropic: AnthropicProvider
) -> None:
    up.script(SlowFirstToken(seconds=5))
    with pytest.raises(ProviderError) as raised:
        await collect(anthropic, claude(up, read_timeout=SHORT_TIMEOUT), {"messages": MESSAGES})
    assert raised.value.kind is ErrorKind.TIMEOUT


async def test_a_refused_request_raises_before_any_call(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    with pytest.raises(ProviderError) as raised:
        await collect(anthropic, deployment, {"messages": MESSAGES, "n": 2})
    assert raised.value.kind is ErrorKind.CLIENT_ERROR
    assert up.requests == []


# -- from hand-written events ------------------------------------------------------------------

START = {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {}}}
PING = {"type": "ping"}
TEXT = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


async def events_of(*payloads: dict[str, Any]) -> AsyncIterator[ServerSentEvent]:
    for payload in payloads:
        yield ServerSentEvent(data=json.dumps(payload), event=str(payload["type"]))


async def translated(*payloads: dict[str, Any], deployment: Deployment) -> list[StreamItem]:
    items = translate(events_of(*payloads), deployment=deployment, pass_usage=False)
    return [item async for item in items]


async def test_an_error_event_right_after_message_start_still_raises(
    deployment: Deployment,
) -> None:
    # The role chunk is held back: nothing was delivered, so the overload can be retried.
    with pytest.raises(ProviderError) as raised:
        await translated(START, PING, OVERLOADED, deployment=deployment)
    assert raised.value.kind is ErrorKind.SERVER_ERROR
    assert raised.value.retryable
    assert "Overloaded" in raised.value.message


async def test_an_error_event_after_content_ends_the_stream(deployment: Deployment) -> None:
    chunks, end = split(await translated(START, PING, TEXT, OVERLOADED, deployment=deployment))
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
    ]
    assert end.error is not None
    assert end.error.kind is ErrorKind.SERVER_ERROR
    assert end.usage is None  # message_start's placeholder output count is not a report


async def test_cache_tokens_count_as_prompt_tokens(deployment: Deployment) -> None:
    usage = {"input_tokens": 10, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 3}
    start = {"type": "message_start", "message": {"id": "m", "usage": usage}}
    finish = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}}
    finish["usage"] = {"output_tokens": 12}
    chunks, end = split(
        await translated(start, TEXT, finish, {"type": "message_stop"}, deployment=deployment)
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert end.finish_reason == "length"
    assert end.usage is not None
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (103, 12)
    assert end.usage.cached_tokens == 90
