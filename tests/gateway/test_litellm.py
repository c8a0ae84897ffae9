"""``LiteLLMProvider`` over real HTTP: LiteLLM's own ``openai/`` route (its own client) against the
loopback upstream, so every answer and fault passes through LiteLLM's code as it would for
Bedrock or Vertex AI.

Skipped only where LiteLLM is not installed (CI installs it with ``.[dev]``). The check is
``find_spec``, not ``pytest.importorskip``: importing LiteLLM unconfigured would try to fetch its
price map from the internet; the provider imports it, once per session, with that turned off.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from deskpilot.gateway import (
    NO_USAGE,
    BreakerConfig,
    CircuitBreaker,
    Deployment,
    ErrorKind,
    LiteLLMProvider,
    ProviderError,
    StreamChunk,
    StreamEnd,
    StreamItem,
    call_with_retries,
)
from deskpilot.gateway.providers.litellm_adapter import litellm_installed
from tests.gateway.support import (
    API_KEY,
    BODY,
    BODY_MARKER,
    MESSAGES,
    SHORT_TIMEOUT,
    RecordingSleep,
    assert_safe,
    policy,
)
from tests.upstream.server import (
    CutStream,
    Hang,
    Ok,
    RateLimited,
    Reset,
    ServerError,
    ToolCall,
    Upstream,
)

if not litellm_installed():
    pytest.skip(
        "LiteLLM is not installed (pip install 'deskpilot[litellm]')", allow_module_level=True
    )

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_ticket",
            "description": "Find an incident by its number",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
]


@pytest.fixture
async def tail() -> AsyncIterator[LiteLLMProvider]:
    instance = LiteLLMProvider()
    try:
        yield instance
    finally:
        await instance.aclose()


def litellm_deployment(up: Upstream, **overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "name": "tail",
        "provider": "litellm",
        "model": "openai/gpt-4o-mini",
        "api_base": up.openai_base,
        "api_key": API_KEY,
        "read_timeout": 5.0,
    }
    fields.update(overrides)
    return Deployment.model_validate(fields)


async def failure(
    provider: LiteLLMProvider, deployment: Deployment, body: Mapping[str, Any] | None = None
) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await provider.chat(body or {"messages": MESSAGES}, deployment=deployment)
    return raised.value


async def collect(
    provider: LiteLLMProvider, deployment: Deployment, body: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], StreamEnd]:
    items: list[StreamItem] = [i async for i in provider.stream(body, deployment=deployment)]
    *chunks, end = items
    assert isinstance(end, StreamEnd)
    return [c.data for c in chunks if isinstance(c, StreamChunk)], end


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )


async def test_chat_returns_the_openai_document_and_the_providers_usage(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    up.script(Ok(content="Hold the power button for 30 seconds.", prompt_tokens=42))
    body = {"model": "alias", "messages": MESSAGES, "temperature": 0.2, "x_vendor_flag": True}

    result = await tail.chat(body, deployment=litellm_deployment(up))

    message = result.body["choices"][0]["message"]
    assert (message["role"], message["content"]) == (
        "assistant",
        "Hold the power button for 30 seconds.",
    )
    assert result.body["object"] == "chat.completion"
    json.dumps(result.body)  # plain JSON, not LiteLLM objects
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (42, 7)
    assert result.usage.from_provider
    assert result.deployment == "tail"
    (sent,) = up.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["temperature"] == 0.2
    assert sent.json["x_vendor_flag"] is True  # not an OpenAI parameter: sent as extra_body


async def test_a_callers_body_cannot_redirect_the_call_or_take_over_litellm(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    async with Upstream() as elsewhere:
        body = {
            "messages": MESSAGES,
            "api_base": elsewhere.openai_base,
            "base_url": elsewhere.openai_base,
            "api_key": "sk-callers-own",
            "model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}],
            "mock_response": "not from the provider",
            "num_retries": 5,
        }
        up.script(ServerError(500))
        error = await failure(tail, litellm_deployment(up), body)

        assert error.kind is ErrorKind.SERVER_ERROR  # the real call, not a mock, no retries
        assert elsewhere.requests == []
    (sent,) = up.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"


async def test_no_reported_usage_is_no_usage(up: Upstream, tail: LiteLLMProvider) -> None:
    up.script(Ok(usage=False))

    result = await tail.chat({"messages": MESSAGES}, deployment=litellm_deployment(up))

    assert result.usage == NO_USAGE
    assert result.body["choices"][0]["message"]["content"]


async def test_tool_calls_pass_through_both_ways(up: Upstream, tail: LiteLLMProvider) -> None:
    up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC0012345"}))
    body = {"messages": MESSAGES, "tools": TOOLS, "tool_choice": "auto"}

    result = await tail.chat(body, deployment=litellm_deployment(up))

    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "lookup_ticket"
    assert json.loads(call["function"]["arguments"]) == {"id": "INC0012345"}
    assert up.requests[-1].json["tools"] == TOOLS
    assert up.requests[-1].json["tool_choice"] == "auto"


async def test_a_stream_relays_chunks_and_keeps_the_usage_chunk_unless_asked(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    deployment = litellm_deployment(up)
    up.script(Ok(content="Restart the print spooler.", prompt_tokens=50, completion_tokens=4))

    chunks, end = await collect(tail, deployment, {"messages": MESSAGES})

    assert text_of(chunks) == "Restart the print spooler."
    assert all(chunk["choices"] for chunk in chunks)  # the usage-only chunk was consumed
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert (end.error, end.finish_reason) == (None, "stop")
    assert end.usage is not None
    assert (end.usage.prompt_tokens, end.usage.completion_tokens) == (50, 4)
    assert end.usage.from_provider
    assert up.requests[-1].json["stream_options"] == {"include_usage": True}

    asked = {"messages": MESSAGES, "stream_options": {"include_usage": True}}
    chunks, end = await collect(tail, deployment, asked)

    assert chunks[-1]["choices"] == []
    assert end.usage is not None
    assert chunks[-1]["usage"]["completion_tokens"] == end.usage.completion_tokens


async def test_a_stream_without_provider_usage_ends_without_usage(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    up.script(Ok(usage=False))

    chunks, end = await collect(tail, litellm_deployment(up), {"messages": MESSAGES})

    assert text_of(chunks)
    assert (end.error, end.usage, end.finish_reason) == (None, None, "stop")


async def test_a_streamed_tool_call_arrives_in_chunks(up: Upstream, tail: LiteLLMProvider) -> None:
    up.script(ToolCall())

    chunks, end = await collect(tail, litellm_deployment(up), {"messages": MESSAGES})

    arguments = "".join(
        call["function"].get("arguments") or ""
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or ()
    )
    assert json.loads(arguments) == {"id": "INC0012"}
    assert end.finish_reason == "tool_calls"


async def test_a_cut_stream_ends_with_the_error_after_what_arrived(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    up.script(CutStream(after_chunks=2))

    chunks, end = await collect(tail, litellm_deployment(up), {"messages": MESSAGES})

    assert text_of(chunks)
    assert end.error is not None
    assert end.error.kind is ErrorKind.CONNECTION
    assert end.usage is None


async def test_a_stream_failing_before_its_first_chunk_raises(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    deployment = litellm_deployment(up)
    up.script(RateLimited(retry_after=2), ServerError(500), Reset())

    for kind in (ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR, ErrorKind.CONNECTION):
        with pytest.raises(ProviderError) as raised:
            await anext(aiter(tail.stream({"messages": MESSAGES}, deployment=deployment)))
        assert raised.value.kind is kind


async def test_statuses_become_kinds_without_litellm_retrying(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    deployment = litellm_deployment(up)
    expected = [
        (RateLimited(retry_after=3), ErrorKind.RATE_LIMITED, 429, 3.0),
        (RateLimited(retry_after=None), ErrorKind.RATE_LIMITED, 429, None),
        (ServerError(500), ErrorKind.SERVER_ERROR, 500, None),
        (ServerError(503), ErrorKind.SERVER_ERROR, 503, None),
        (ServerError(401), ErrorKind.AUTH, 401, None),
        (ServerError(403), ErrorKind.AUTH, 403, None),
        (ServerError(400), ErrorKind.CLIENT_ERROR, 400, None),
        (ServerError(404), ErrorKind.CLIENT_ERROR, 404, None),
        (ServerError(422), ErrorKind.CLIENT_ERROR, 422, None),
    ]
    for fault, kind, status, retry_after in expected:
        before = len(up.requests)
        up.script(fault)
        error = await failure(tail, deployment)
        assert (error.kind, error.status, error.retry_after) == (kind, status, retry_after), fault
        assert f"HTTP {status}" in error.message
        assert len(up.requests) == before + 1, f"LiteLLM retried {fault}"


async def test_transport_failures_are_timeouts_and_connection_errors(
    up: Upstream, tail: LiteLLMProvider
) -> None:
    up.script(Hang(seconds=10), Reset())
    hasty = litellm_deployment(up, read_timeout=SHORT_TIMEOUT)

    started = time.monotonic()
    timeout = await failure(tail, hasty)
    assert time.monotonic() - started < 5
    reset = await failure(tail, hasty)
    refused = await failure(tail, litellm_deployment(up, api_base="http://127.0.0.1:9/v1"))

    assert [e.kind for e in (timeout, reset, refused)] == [
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.CONNECTION,
    ]
    assert {e.status for e in (timeout, reset, refused)} == {None}


async def test_embeddings(up: Upstream, tail: LiteLLMProvider) -> None:
    deployment = litellm_deployment(up, model="openai/text-embedding-3-small")
    body = {"input": ["printer offline", "vpn drops"], "dimensions": 8, "model": "alias"}

    result = await tail.embed(body, deployment=deployment)

    data = result.body["data"]
    assert [item["index"] for item in data] == [0, 1]
    assert all(len(item["embedding"]) == 8 for item in data)
    assert (result.usage.prompt_tokens, result.usage.from_provider) == (4, True)
    sent = up.requests[-1]
    assert (sent.path, sent.json["model"], sent.json["dimensions"]) == (
        "/v1/embeddings",
        "text-embedding-3-small",
        8,
    )


async def test_the_gateways_retries_drive_the_adapter(up: Upstream, tail: LiteLLMProvider) -> None:
    deployment = litellm_deployment(up)
    sleep = RecordingSleep()
    up.script(RateLimited(retry_after=0.25), ServerError(502))

    result = await call_with_retries(
        tail,
        deployment,
        {"messages": MESSAGES},
        policy=policy(sleep),
        breaker=CircuitBreaker(deployment.name, BreakerConfig()),
    )

    assert result.attempts == 3
    assert sleep.delays == [0.25, 0.5 * 1.0]
    assert len(up.requests) == 3


async def test_no_error_carries_the_key_or_the_body(up: Upstream, tail: LiteLLMProvider) -> None:
    deployment = litellm_deployment(up, read_timeout=SHORT_TIMEOUT)
    up.script(RateLimited(), ServerError(500), ServerError(400), ServerError(401), Reset())
    up.script(Hang(seconds=10))
    errors = [await failure(tail, deployment, BODY) for _ in range(6)]
    for broken in ({"messages": "not a list"}, {**BODY, "n": "many"}):
        errors.append(await failure(tail, deployment, broken))
    unknown = litellm_deployment(up, model="no-such-provider/model")
    errors.append(await failure(tail, unknown, BODY))
    up.script(CutStream(after_chunks=1))
    _, end = await collect(tail, deployment, BODY)
    assert end.error is not None
    errors.append(end.error)

    assert len({e.kind for e in errors}) >= 5
    for error in errors:
        assert_safe(error)
        assert error.__context__ is None
        assert error.__cause__ is None
        assert BODY_MARKER not in error.message
