"""The OpenAI-compatible provider against a real loopback upstream (HTTP, no mocks): what goes
upstream, what comes back, and how each failure is classified."""

from __future__ import annotations

from typing import Any

import pytest

from deskpilot.gateway import Deployment, ErrorKind, OpenAICompatProvider, ProviderError
from tests.gateway.support import API_KEY, MESSAGES, SHORT_TIMEOUT, deployment_for
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

EVERY_PARAMETER: dict[str, Any] = {
    "model": "what-the-caller-asked-for",
    "messages": MESSAGES,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup_ticket",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        }
    ],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["\n\n"],
    "seed": 42,
    "logprobs": True,
    "top_logprobs": 2,
    "user": "agent-17",
    "max_tokens": 64,
    "presence_penalty": 0.1,
    "metadata": {"ticket": "INC0012"},
    "a_future_parameter": {"nested": [1, 2]},
}


async def test_every_parameter_passes_through_with_the_deployments_model(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    await provider.chat(EVERY_PARAMETER, deployment=deployment)
    sent = up.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.json == {**EVERY_PARAMETER, "model": "gpt-4o-mini"}
    assert EVERY_PARAMETER["model"] == "what-the-caller-asked-for"  # the caller's body untouched


async def test_auth_and_extra_headers(up: Upstream, provider: OpenAICompatProvider) -> None:
    deployment = deployment_for(up, extra_headers={"OpenAI-Organization": "org-itsm"})
    await provider.chat({"messages": MESSAGES}, deployment=deployment)
    headers = up.requests[-1].headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["openai-organization"] == "org-itsm"
    assert headers["content-type"] == "application/json"


async def test_a_stray_stream_flag_does_not_turn_chat_into_a_stream(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    result = await provider.chat(body, deployment=deployment)
    assert result.body["object"] == "chat.completion"
    assert "stream" not in up.requests[-1].json
    assert "stream_options" not in up.requests[-1].json


async def test_the_response_body_and_usage(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="Try a hard reset.", prompt_tokens=120, completion_tokens=4))
    result = await provider.chat({"messages": MESSAGES}, deployment=deployment)
    assert result.body["choices"][0]["message"]["content"] == "Try a hard reset."
    assert result.body["model"] == "gpt-4o-mini"
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (120, 4, 0)
    assert usage.from_provider
    assert result.deployment == "primary"
    assert result.attempts == 1
    assert result.latency_ms > 0


async def test_no_usage_reported_is_said_so(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(Ok(usage=False))
    result = await provider.chat({"messages": MESSAGES}, deployment=deployment)
    assert not result.usage.from_provider
    assert result.usage.total_tokens == 0


async def test_tool_calls_pass_through(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC0099"}))
    body = {"messages": MESSAGES, "tools": EVERY_PARAMETER["tools"], "tool_choice": "required"}
    result = await provider.chat(body, deployment=deployment)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "lookup_ticket", "arguments": '{"id": "INC0099"}'}
    assert up.requests[-1].json["tool_choice"] == "required"


async def test_n_choices(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(Ok(content="one two three"))
    result = await provider.chat({"messages": MESSAGES, "n": 2}, deployment=deployment)
    assert [c["index"] for c in result.body["choices"]] == [0, 1]
    assert result.usage.completion_tokens == 6  # summed over both choices
    assert up.requests[-1].json["n"] == 2


async def test_embeddings(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    embedder = deployment.model_copy(update={"model": "text-embedding-3-small"})
    body = {"model": "kb-embedder", "input": ["printer offline", "vpn drops"], "dimensions": 4}
    result = await provider.embed(body, deployment=embedder)
    assert up.requests[-1].path == "/v1/embeddings"
    assert up.requests[-1].json == {**body, "model": "text-embedding-3-small"}
    assert len(result.body["data"]) == 2
    assert len(result.body["data"][0]["embedding"]) == 4
    assert result.usage.prompt_tokens == 4
    assert result.usage.completion_tokens == 0
    assert result.usage.from_provider


async def failure(provider: OpenAICompatProvider, deployment: Deployment) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await provider.chat({"messages": MESSAGES}, deployment=deployment)
    return raised.value


async def test_rate_limited_with_retry_after(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(RateLimited(retry_after=3))
    error = await failure(provider, deployment)
    assert (error.kind, error.status, error.retry_after) == (ErrorKind.RATE_LIMITED, 429, 3.0)
    assert error.retryable
    assert "Rate limit reached" in error.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, ErrorKind.SERVER_ERROR), (502, ErrorKind.SERVER_ERROR), (504, ErrorKind.TIMEOUT)],
)
async def test_server_errors(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    status: int,
    kind: ErrorKind,
) -> None:
    up.script(ServerError(status))
    error = await failure(provider, deployment)
    assert (error.kind, error.status) == (kind, status)
    assert error.retryable


async def test_a_missing_key_is_an_auth_error(up: Upstream, provider: OpenAICompatProvider) -> None:
    error = await failure(provider, deployment_for(up, key=None))
    assert (error.kind, error.status) == (ErrorKind.AUTH, 401)
    assert not error.retryable
    assert "Authorization" not in up.requests[-1].headers


async def test_a_client_error_carries_the_providers_message(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    with pytest.raises(ProviderError) as raised:
        await provider.chat({"messages": []}, deployment=deployment)
    error = raised.value
    assert (error.kind, error.status) == (ErrorKind.CLIENT_ERROR, 400)
    assert "'messages' is a required property" in error.message
    assert not error.retryable


async def test_a_reset_connection(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(Reset())
    error = await failure(provider, deployment)
    assert error.kind is ErrorKind.CONNECTION


async def test_a_body_cut_after_the_headers(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    up.script(CutStream())
    error = await failure(provider, deployment)
    assert error.kind is ErrorKind.CONNECTION


async def test_a_hang_times_out_at_the_deployments_read_timeout(
    up: Upstream, provider: OpenAICompatProvider
) -> None:
    up.script(Hang(seconds=30))
    error = await failure(provider, deployment_for(up, read_timeout=SHORT_TIMEOUT))
    assert error.kind is ErrorKind.TIMEOUT
    assert error.retryable


async def test_nothing_listening(provider: OpenAICompatProvider) -> None:
    async with Upstream() as gone:
        deployment = deployment_for(gone)
    error = await failure(provider, deployment)
    assert error.kind is ErrorKind.CONNECTION


async def test_connections_are_reused(
    up: Upstream, provider: OpenAICompatProvider, deployment: Deployment
) -> None:
    for _ in range(5):
        await provider.chat({"messages": MESSAGES}, deployment=deployment)
    assert up.connections_opened == 1
