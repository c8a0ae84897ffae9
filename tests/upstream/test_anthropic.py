"""The Anthropic Messages surface under ``/anthropic``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.upstream.conftest import ANTHROPIC_HEADERS, message_body
from tests.upstream.server import CutStream, Ok, RateLimited, ServerError, ToolCall, Upstream
from tests.upstream.sse import SseEvent, iter_events, stream_into

STREAM_ORDER = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


async def stream_events(client: httpx.AsyncClient, body: dict[str, Any]) -> list[SseEvent]:
    async with client.stream("POST", "/v1/messages", json=body) as response:
        assert response.status_code == 200
        return [event async for event in iter_events(response)]


def collapsed(events: list[SseEvent]) -> list[str]:
    """Event names with consecutive repeats folded, to compare against the documented order."""
    names: list[str] = []
    for event in events:
        assert event.event == event.json()["type"]
        if not names or names[-1] != event.event:
            names.append(str(event.event))
    return names


async def test_message_is_anthropic_shaped(anthropic_http: httpx.AsyncClient) -> None:
    body = message_body("Reset my password", system="You are a helpdesk agent.")

    response = await anthropic_http.post("/v1/messages", json=body)

    assert response.status_code == 200
    message = response.json()
    assert message["id"].startswith("msg_")
    assert (message["type"], message["role"]) == ("message", "assistant")
    assert message["model"] == "claude-sonnet-4-5"
    assert message["content"] == [{"type": "text", "text": "Hello from the test upstream."}]
    assert message["stop_reason"] == "end_turn"
    # 3 words + 4 for the message + 5 words of system prompt; 5 words of output
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (12, 5)


async def test_stream_follows_the_documented_event_order(
    up: Upstream, anthropic_http: httpx.AsyncClient
) -> None:
    up.script(Ok(content="Your ticket is resolved.", prompt_tokens=30))

    events = await stream_events(anthropic_http, message_body(stream=True))

    assert collapsed(events) == STREAM_ORDER
    start = events[0].json()["message"]
    assert (start["content"], start["usage"]["input_tokens"]) == ([], 30)
    texts = [e.json()["delta"]["text"] for e in events if e.event == "content_block_delta"]
    assert len(texts) > 1
    assert "".join(texts) == "Your ticket is resolved."
    end = events[-2].json()
    assert end["delta"]["stop_reason"] == "end_turn"
    assert end["usage"]["output_tokens"] == 4


async def test_tool_use_block(up: Upstream, anthropic_http: httpx.AsyncClient) -> None:
    up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC0042"}, content="Checking."))

    message = (await anthropic_http.post("/v1/messages", json=message_body())).json()

    assert message["stop_reason"] == "tool_use"
    text, tool = message["content"]
    assert text == {"type": "text", "text": "Checking."}
    assert tool["type"] == "tool_use"
    assert tool["id"].startswith("toolu_")
    assert (tool["name"], tool["input"]) == ("lookup_ticket", {"id": "INC0042"})


async def test_tool_use_streams_input_json_deltas(
    up: Upstream, anthropic_http: httpx.AsyncClient
) -> None:
    arguments = {"id": "INC0042", "note": "user cannot print from the third floor"}
    up.script(ToolCall(arguments=arguments))

    events = await stream_events(anthropic_http, message_body(stream=True))

    assert collapsed(events) == STREAM_ORDER
    block = events[1].json()["content_block"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "lookup_ticket", {})
    parts = [e.json()["delta"] for e in events if e.event == "content_block_delta"]
    assert {p["type"] for p in parts} == {"input_json_delta"}
    assert len(parts) > 1
    assert json.loads("".join(p["partial_json"] for p in parts)) == arguments
    assert events[-2].json()["delta"]["stop_reason"] == "tool_use"


async def test_usage_false_omits_usage(up: Upstream, anthropic_http: httpx.AsyncClient) -> None:
    up.script(Ok(usage=False), Ok(usage=False))

    message = (await anthropic_http.post("/v1/messages", json=message_body())).json()
    events = await stream_events(anthropic_http, message_body(stream=True))

    assert "usage" not in message
    assert "usage" not in events[0].json()["message"]
    assert "usage" not in events[-2].json()


@pytest.mark.parametrize(
    ("missing", "status", "kind"),
    [
        ("x-api-key", 401, "authentication_error"),
        ("anthropic-version", 400, "invalid_request_error"),
    ],
)
async def test_required_headers(up: Upstream, missing: str, status: int, kind: str) -> None:
    headers = {k: v for k, v in ANTHROPIC_HEADERS.items() if k != missing}
    async with httpx.AsyncClient(base_url=up.anthropic_base, headers=headers) as client:
        response = await client.post("/v1/messages", json=message_body())

    assert response.status_code == status
    assert response.json() == {
        "type": "error",
        "error": {"type": kind, "message": response.json()["error"]["message"]},
    }


async def test_max_tokens_is_required(anthropic_http: httpx.AsyncClient) -> None:
    body = message_body()
    del body["max_tokens"]

    response = await anthropic_http.post("/v1/messages", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_faults_use_the_anthropic_error_shape(
    up: Upstream, anthropic_http: httpx.AsyncClient
) -> None:
    up.script(RateLimited(retry_after=3), ServerError(529), ServerError(500))

    limited, overloaded, failed = [
        await anthropic_http.post("/v1/messages", json=message_body()) for _ in range(3)
    ]

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.json()["type"] == "error"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    assert (failed.status_code, failed.json()["error"]["type"]) == (500, "api_error")


async def test_cut_stream(up: Upstream, anthropic_http: httpx.AsyncClient) -> None:
    up.script(CutStream(after_chunks=3))
    received: list[SseEvent] = []

    with pytest.raises(httpx.RemoteProtocolError):
        await stream_into(anthropic_http, "/v1/messages", message_body(stream=True), received)

    names = [event.event for event in received]
    assert names == ["message_start", "content_block_start"] + ["content_block_delta"] * 3
