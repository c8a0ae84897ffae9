"""The Anthropic provider against the loopback upstream's Messages API (HTTP, no mocks): the
OpenAI request translated on the way up, the message translated back, failures classified."""

from __future__ import annotations

import json
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest

from deskpilot.gateway import AnthropicProvider, Deployment, ErrorKind, ProviderError
from deskpilot.gateway.providers.anthropic_reply import completion
from deskpilot.gateway.providers.anthropic_wire import DEFAULT_MAX_TOKENS
from tests.gateway.support import API_KEY, MESSAGES, SHORT_TIMEOUT, deployment_for
from tests.upstream.server import Hang, Ok, RateLimited, Reset, ServerError, ToolCall, Upstream

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_ticket",
            "description": "Find a ticket by its number",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
]


def claude(up: Upstream, **overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "api_base": up.anthropic_base,
    }
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


async def sent(up: Upstream, provider: AnthropicProvider, body: dict[str, Any]) -> Any:
    await provider.chat(body, deployment=claude(up))
    return up.requests[-1].json


async def test_the_request_is_translated(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    body = {
        "model": "what-the-caller-asked-for",
        "messages": [
            {"role": "system", "content": "You are a helpdesk agent."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            *MESSAGES,
        ],
        "tools": TOOLS,
        "tool_choice": "required",
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "\n\n",
        "user": "agent-17",
        "max_completion_tokens": 64,
        "seed": 42,  # advisory, no Anthropic counterpart: dropped
    }
    await anthropic.chat(body, deployment=deployment)
    request = up.requests[-1]
    assert (request.method, request.path) == ("POST", "/anthropic/v1/messages")
    assert request.json == {
        "model": "claude-sonnet-4-5",
        "system": "You are a helpdesk agent.\n\nBe brief.",
        "messages": [{"role": "user", "content": "my laptop will not boot"}],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "agent-17"},
        "tools": [
            {
                "name": "lookup_ticket",
                "description": "Find a ticket by its number",
                "input_schema": TOOLS[0]["function"]["parameters"],
            }
        ],
        "tool_choice": {"type": "any"},
    }
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert body["model"] == "what-the-caller-asked-for"  # the caller's body untouched


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "lookup_ticket"}},
            None,
            {"type": "tool", "name": "lookup_ticket"},
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
async def test_tool_choice(
    up: Upstream, anthropic: AnthropicProvider, choice: Any, parallel: bool | None, expected: Any
) -> None:
    body = {"messages": MESSAGES, "tools": TOOLS, "tool_choice": choice}
    body["parallel_tool_calls"] = parallel
    assert (await sent(up, anthropic, body))["tool_choice"] == expected


async def test_a_tool_call_round_trip(up: Upstream, anthropic: AnthropicProvider) -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_ticket", "arguments": '{"id": "INC1"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "lookup_ticket", "arguments": '{"id": "INC2"}'},
        },
    ]
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Compare these"}, image]},
            {"role": "assistant", "content": "Looking both up.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_1", "content": "INC1: printer offline"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "INC2: vpn"}],
            },
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
            },
        ]
    }
    assert (await sent(up, anthropic, body))["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking both up."},
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "lookup_ticket",
                    "input": {"id": "INC1"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "lookup_ticket",
                    "input": {"id": "INC2"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1",
                    "content": "INC1: printer offline",
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "INC2: vpn"}],
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
            ],
        },
    ]


async def test_max_tokens_defaults_and_follows_the_caller(
    up: Upstream, anthropic: AnthropicProvider
) -> None:
    assert (await sent(up, anthropic, {"messages": MESSAGES}))["max_tokens"] == DEFAULT_MAX_TOKENS
    body = {"messages": MESSAGES, "max_tokens": 10}
    assert (await sent(up, anthropic, body))["max_tokens"] == 10


async def test_the_response_body_and_usage(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="Try a hard reset.", prompt_tokens=120, completion_tokens=4))
    result = await anthropic.chat({"messages": MESSAGES, "model": "alias"}, deployment=deployment)
    body = result.body
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("msg_")
    assert isinstance(body["created"], int)
    assert body["model"] == "claude-sonnet-4-5"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Try a hard reset."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 4,
        "total_tokens": 124,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (120, 4, 0)
    assert usage.from_provider
    assert (result.deployment, result.attempts) == ("primary", 1)


async def test_no_usage_reported_is_said_so(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(Ok(usage=False))
    result = await anthropic.chat({"messages": MESSAGES}, deployment=deployment)
    assert not result.usage.from_provider
    assert "usage" not in result.body


async def test_a_tool_use_becomes_tool_calls(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC0099"}, content="Checking."))
    result = await anthropic.chat({"messages": MESSAGES, "tools": TOOLS}, deployment=deployment)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("toolu_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "lookup_ticket"
    assert json.loads(call["function"]["arguments"]) == {"id": "INC0099"}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reasons_and_cached_tokens(stop_reason: str, finish_reason: str) -> None:
    message = {
        "id": "msg_1",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": stop_reason,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 5,
            "output_tokens": 7,
        },
    }
    body, usage = completion(message, model="fallback")
    assert body["choices"][0]["finish_reason"] == finish_reason
    assert body["choices"][0]["message"]["content"] is None  # no text block
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (115, 7, 100)
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 100}


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"n": 2}, "n > 1"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "json_schema"),
        ({"response_format": {"type": "json_object"}}, "json_object"),
        ({"logprobs": True}, "'logprobs'"),
        ({"a_future_parameter": 1}, "'a_future_parameter'"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role 'function'"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": 5}, "stop"),
        ({"tools": [{"type": "retrieval"}]}, "type 'function'"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input_audio"),
    ],
)
async def test_what_anthropic_cannot_do_is_refused_without_a_call(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment, extra: Any, said: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        await anthropic.chat({"messages": MESSAGES, **extra}, deployment=deployment)
    assert raised.value.kind is ErrorKind.CLIENT_ERROR
    assert not raised.value.retryable
    assert said in raised.value.message
    assert up.requests == []


async def test_one_choice_and_a_text_format_are_fine(
    up: Upstream, anthropic: AnthropicProvider
) -> None:
    body = {"messages": MESSAGES, "n": 1, "response_format": {"type": "text"}, "logprobs": False}
    assert "n" not in await sent(up, anthropic, body)


async def test_there_are_no_embeddings(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    with pytest.raises(ProviderError, match="no embeddings endpoint") as raised:
        await anthropic.embed({"input": ["printer offline"]}, deployment=deployment)
    assert raised.value.kind is ErrorKind.CLIENT_ERROR
    assert up.requests == []


async def failure(provider: AnthropicProvider, deployment: Deployment) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await provider.chat({"messages": MESSAGES}, deployment=deployment)
    return raised.value


async def test_rate_limited_with_retry_after(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment
) -> None:
    up.script(RateLimited(retry_after=3))
    error = await failure(anthropic, deployment)
    assert (error.kind, error.status, error.retry_after) == (ErrorKind.RATE_LIMITED, 429, 3.0)
    assert error.retryable
    assert "Rate limit reached" in error.message


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_and_overload_are_retryable(
    up: Upstream, anthropic: AnthropicProvider, deployment: Deployment, status: int
) -> None:
    up.script(ServerError(status))
    error = await failure(anthropic, deployment)
    assert (error.kind, error.status) == (ErrorKind.SERVER_ERROR, status)
    assert error.retryable


async def test_transport_failures(up: Upstream, anthropic: AnthropicProvider) -> None:
    up.script(Reset(), Hang(seconds=30))
    deployment = claude(up, read_timeout=SHORT_TIMEOUT)
    reset, hang = [await failure(anthropic, deployment) for _ in range(2)]
    assert reset.kind is ErrorKind.CONNECTION
    assert hang.kind is ErrorKind.TIMEOUT
    assert reset.retryable
    assert hang.retryable


async def test_a_missing_key_is_an_auth_error(up: Upstream, anthropic: AnthropicProvider) -> None:
    error = await failure(anthropic, claude(up, key=None))
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert "x-api-key" not in up.requests[-1].headers


async def test_no_error_carries_the_key(up: Upstream, anthropic: AnthropicProvider) -> None:
    deployment = claude(up, read_timeout=SHORT_TIMEOUT)
    up.script(RateLimited(), ServerError(529), Reset(), Hang(seconds=30))
    errors = [await failure(anthropic, deployment) for _ in range(4)]
    with pytest.raises(ProviderError) as refused:
        await anthropic.chat({"messages": MESSAGES, "n": 3}, deployment=deployment)
    errors.append(refused.value)
    assert len({e.kind for e in errors}) == 5
    for error in errors:
        for text in (str(error), repr(error), "".join(traceback.format_exception(error))):
            assert API_KEY not in text
