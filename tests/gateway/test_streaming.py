"""Streaming against the loopback upstream: chunks in order as they come, usage from the
provider's own chunk, and breaks reported after what was delivered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from deskpilot.gateway import (
    Deployment,
    ErrorKind,
    OpenAICompatProvider,
    PoolLimits,
    ProviderError,
    StreamChunk,
    StreamEnd,
    StreamItem,
)
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


async def collect(
    provider: OpenAICompatProvider, deployment: Deployment, body: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], StreamEnd]:
    items: list[StreamItem] = [i async for i in provider.stream(body, deployment=deployment)]
    *chunks, end = items
    assert isinstance(end, StreamEnd)
    assert all(isinstance(c, StreamChunk) for c in chunks)
    return [c.data for c in chunks if isinstance(c, StreamChunk)], end


def text_of(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        for choice in chunk["choices"]
        if choice["index"] == index
    )


async def test_chunks_arrive_in_order_and_usage_comes_from_the_provider(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="Restart the print spooler.", prompt_tokens=50, completion_tokens=4))
    chunks, end = await collect(provider, deployment, {"messages": MESSAGES, "model": "alias"})
    assert text_of(chunks) == "Restart the print spooler."
    assert all(chunk["choices"] for chunk in chunks)  # the usage-only chunk was consumed
    assert end.error is None
    assert end.finish_reason == "stop"
    assert end.usage is not None
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (50, 4)
    assert end.usage.from_provider
    sent = up.requests[-1].json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert up.requests[-1].headers["accept"] == "text/event-stream"


async def test_the_callers_stream_options_are_kept_and_its_usage_chunk_passed_on(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    body = {"messages": MESSAGES, "stream_options": {"include_usage": True, "x_vendor": 1}}
    chunks, end = await collect(provider, deployment, body)
    assert up.requests[-1].json["stream_options"] == {"include_usage": True, "x_vendor": 1}
    assert chunks[-1]["choices"] == []
    assert end.usage is not None
    assert chunks[-1]["usage"]["completion_tokens"] == end.usage.completion_tokens


async def test_a_provider_that_reports_no_usage(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="fine", usage=False))
    chunks, end = await collect(provider, deployment, {"messages": MESSAGES})
    assert text_of(chunks) == "fine"
    assert end.error is None
    assert end.usage is None  # the gateway counts the tokens itself


async def test_tool_call_deltas_and_n_choices_pass_through(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC7"}))
    chunks, end = await collect(provider, deployment, {"messages": MESSAGES, "n": 2})
    for index in (0, 1):
        calls = [
            call
            for chunk in chunks
            for choice in chunk["choices"]
            if choice["index"] == index
            for call in choice["delta"].get("tool_calls", [])
        ]
        assert calls[0]["function"]["name"] == "lookup_ticket"
        assert "".join(c["function"]["arguments"] for c in calls) == '{"id": "INC7"}'
    assert end.finish_reason == "tool_calls"


async def test_a_cut_stream_ends_with_an_error_after_the_delivered_chunks(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(CutStream(after_chunks=2))
    chunks, end = await collect(provider, deployment, {"messages": MESSAGES})
    assert len(chunks) == 3  # the role chunk and two pieces of content
    assert text_of(chunks) == "Hello from"
    assert end.error is not None
    assert end.error.kind is ErrorKind.CONNECTION
    assert end.usage is None
    assert end.finish_reason is None


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [(ServerError(503), ErrorKind.SERVER_ERROR), (RateLimited(retry_after=2), "rate_limited")],
)
async def test_errors_before_the_first_chunk_raise(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    behaviour: ServerError | RateLimited,
    kind: str,
) -> None:
    up.script(behaviour)
    with pytest.raises(ProviderError) as raised:
        await collect(provider, deployment, {"messages": MESSAGES})
    assert raised.value.kind == kind


async def test_a_slow_first_token_beyond_the_read_timeout_raises(
    up: Upstream, provider: OpenAICompatProvider
) -> None:
    up.script(SlowFirstToken(seconds=5))
    deployment = deployment_for(up, read_timeout=SHORT_TIMEOUT)
    with pytest.raises(ProviderError) as raised:
        await collect(provider, deployment, {"messages": MESSAGES})
    assert raised.value.kind is ErrorKind.TIMEOUT


async def test_a_slow_first_token_within_the_read_timeout_streams(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(SlowFirstToken(seconds=0.1, then=Ok(content="late but fine")))
    chunks, end = await collect(provider, deployment, {"messages": MESSAGES})
    assert text_of(chunks) == "late but fine"
    assert end.error is None


async def test_a_stream_left_early_frees_its_connection(up: Upstream) -> None:
    # With a pool of one connection, the next call would wait for a connection the abandoned
    # stream still held, and fail with a pool timeout.
    provider = OpenAICompatProvider(limits=PoolLimits(max_connections=1))
    deployment = deployment_for(up, connect_timeout=0.5)
    try:
        up.script(Ok(content="a long answer " * 20))
        stream = provider.stream({"messages": MESSAGES}, deployment=deployment)
        assert isinstance(await anext(stream), StreamChunk)
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        result = await provider.chat({"messages": MESSAGES}, deployment=deployment)
    finally:
        await provider.aclose()
    assert result.usage.from_provider
    assert len(up.requests) == 2
