"""The OpenAI-compatible surface, the script, the request log and the threaded mode."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import httpx
import pytest

from tests.upstream.conftest import chat_body
from tests.upstream.server import Ok, RateLimited, Reset, ServerError, ToolCall, Upstream
from tests.upstream.sse import SseEvent, iter_events


async def stream_chunks(client: httpx.AsyncClient, body: dict[str, Any]) -> list[SseEvent]:
    async with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [event async for event in iter_events(response)]


async def test_completion_is_openai_shaped_with_deterministic_usage(
    openai_http: httpx.AsyncClient,
) -> None:
    response = await openai_http.post("/chat/completions", json=chat_body("Reset my password"))

    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello from the test upstream.",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    # 3 words + 4 for the one message; the default content has 5 words
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (7, 5, 12)


async def test_n_choices_and_explicit_token_counts(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(Ok(content="two words"), Ok(content="hi", prompt_tokens=100, completion_tokens=9))

    counted = (await openai_http.post("/chat/completions", json=chat_body(n=2))).json()
    given = (await openai_http.post("/chat/completions", json=chat_body())).json()

    assert [c["index"] for c in counted["choices"]] == [0, 1]
    assert {c["message"]["content"] for c in counted["choices"]} == {"two words"}
    assert counted["usage"]["completion_tokens"] == 4  # summed over both choices
    assert given["choices"][0]["message"]["content"] == "hi"
    assert given["usage"]["prompt_tokens"] == 100
    assert given["usage"]["total_tokens"] == 109


async def test_stream_with_include_usage(up: Upstream, openai_http: httpx.AsyncClient) -> None:
    up.script(Ok(content="The printer is fixed now."))
    body = chat_body(stream=True, stream_options={"include_usage": True})

    events = await stream_chunks(openai_http, body)

    assert events[-1].data == "[DONE]"
    chunks = [event.json() for event in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert len(pieces) > 1
    assert "".join(pieces) == "The printer is fixed now."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5


async def test_stream_without_include_usage_has_no_usage(openai_http: httpx.AsyncClient) -> None:
    events = await stream_chunks(openai_http, chat_body(stream=True))

    assert events[-1].data == "[DONE]"
    chunks = [event.json() for event in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_usage_false_omits_usage_everywhere(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(Ok(usage=False), Ok(usage=False))

    plain = await openai_http.post("/chat/completions", json=chat_body())
    body = chat_body(stream=True, stream_options={"include_usage": True})
    events = await stream_chunks(openai_http, body)

    assert "usage" not in plain.json()
    assert events[-1].data == "[DONE]"
    assert all(e.json()["choices"] and "usage" not in e.json() for e in events[:-1])


async def test_tool_call_non_streaming(up: Upstream, openai_http: httpx.AsyncClient) -> None:
    up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC0042", "fields": ["state"]}))

    choice = (await openai_http.post("/chat/completions", json=chat_body())).json()["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "lookup_ticket"
    assert json.loads(call["function"]["arguments"]) == {"id": "INC0042", "fields": ["state"]}


async def test_tool_call_streaming_deltas(up: Upstream, openai_http: httpx.AsyncClient) -> None:
    arguments = {"id": "INC0042", "note": "user cannot print from the third floor"}
    up.script(ToolCall(arguments=arguments))

    events = await stream_chunks(openai_http, chat_body(stream=True))

    assert events[-1].data == "[DONE]"
    deltas = [e.json()["choices"][0]["delta"] for e in events[:-1]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["function"] == {"name": "lookup_ticket", "arguments": ""}
    assert all("id" not in c and "name" not in c["function"] for c in calls[1:])
    assert len(calls) > 2  # the arguments arrive in pieces
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == arguments
    assert events[-2].json()["choices"][0]["finish_reason"] == "tool_calls"


async def test_embeddings_are_deterministic(openai_http: httpx.AsyncClient) -> None:
    body = {"model": "text-embedding-3-small", "input": ["printer jam", "vpn down"]}

    first = (await openai_http.post("/embeddings", json=body)).json()
    again = (await openai_http.post("/embeddings", json=body)).json()
    single = {"model": "text-embedding-3-small", "input": "vpn down"}
    alone = (await openai_http.post("/embeddings", json=single)).json()

    assert first["object"] == "list"
    assert first["model"] == "text-embedding-3-small"
    assert [d["index"] for d in first["data"]] == [0, 1]
    assert {d["object"] for d in first["data"]} == {"embedding"}
    vectors = [d["embedding"] for d in first["data"]]
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] != vectors[1]
    assert vectors == [d["embedding"] for d in again["data"]]
    assert alone["data"][0]["embedding"] == vectors[1]
    assert first["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


async def test_embeddings_base64_and_dimensions(openai_http: httpx.AsyncClient) -> None:
    plain = {"model": "e", "input": "printer jam", "dimensions": 16}
    packed = {**plain, "encoding_format": "base64"}

    floats = (await openai_http.post("/embeddings", json=plain)).json()["data"][0]["embedding"]
    encoded = (await openai_http.post("/embeddings", json=packed)).json()["data"][0]["embedding"]

    decoded = struct.unpack("<16f", base64.b64decode(encoded))
    assert len(floats) == 16
    assert decoded == pytest.approx(floats, abs=1e-6)


async def test_models_lists_ids(openai_http: httpx.AsyncClient) -> None:
    body = (await openai_http.get("/models")).json()

    assert body["object"] == "list"
    assert "gpt-4o-mini" in {m["id"] for m in body["data"]}
    assert {m["object"] for m in body["data"]} == {"model"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}]
)
async def test_openai_routes_require_a_bearer_key(up: Upstream, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=up.openai_base, headers=headers) as client:
        response = await client.post("/chat/completions", json=chat_body())
        models = await client.get("/models")

    assert response.status_code == 401
    assert models.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_bad_requests_get_openai_errors(openai_http: httpx.AsyncClient) -> None:
    not_json = await openai_http.post("/chat/completions", content=b"{nope")
    no_model = await openai_http.post("/chat/completions", json={"messages": []})
    unknown = await openai_http.post("/completions", json=chat_body())
    wrong_method = await openai_http.get("/chat/completions")

    assert [r.status_code for r in (not_json, no_model, unknown, wrong_method)] == [
        400,
        400,
        404,
        405,
    ]
    assert no_model.json()["error"]["type"] == "invalid_request_error"


async def test_script_is_fifo_then_default_and_reset_clears(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(ServerError(500), RateLimited(retry_after=1))
    up.script(Ok(content="third"))
    assert up.pending == 3

    responses = [await openai_http.post("/chat/completions", json=chat_body()) for _ in range(4)]

    assert [r.status_code for r in responses] == [500, 429, 200, 200]
    assert responses[2].json()["choices"][0]["message"]["content"] == "third"
    assert responses[3].json()["choices"][0]["message"]["content"] == Ok().content
    up.script(ServerError(503))
    up.reset()
    assert (up.pending, up.requests) == (0, [])
    assert (await openai_http.post("/chat/completions", json=chat_body())).status_code == 200


async def test_every_request_is_recorded_before_its_behaviour(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(Reset(), ServerError())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await openai_http.post("/chat/completions", json=chat_body("first"))
    await openai_http.post("/chat/completions?trace=1", json=chat_body("second"))
    await openai_http.get("/models", headers={"X-Tenant": "alpha"})

    first, second, third = up.requests
    assert (first.method, first.path, first.json) == (
        "POST",
        "/v1/chat/completions",
        chat_body("first"),
    )
    assert first.headers["authorization"] == "Bearer sk-test"
    assert (second.path, second.query) == ("/v1/chat/completions", "trace=1")
    assert isinstance(second.json, dict)
    assert second.json["messages"][0]["content"] == "second"
    assert (third.method, third.json, third.headers["x-tenant"]) == ("GET", None, "alpha")


async def test_keep_alive_serves_many_requests_on_one_connection(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    for _ in range(20):
        assert (await openai_http.post("/chat/completions", json=chat_body())).status_code == 200

    assert up.connections_opened == 1


async def test_without_recording_nothing_is_kept_and_the_script_still_applies() -> None:
    headers = {"Authorization": "Bearer sk-test"}
    async with (
        Upstream(record=False) as up,
        httpx.AsyncClient(base_url=up.openai_base, headers=headers) as client,
    ):
        up.script(ServerError(503))
        statuses = [
            (await client.post("/chat/completions", json=chat_body())).status_code for _ in range(3)
        ]

        assert statuses == [503, 200, 200]
        assert up.requests == []


async def test_concurrent_clients_are_all_answered(up: Upstream) -> None:
    async def one(client: httpx.AsyncClient) -> int:
        return (await client.post("/chat/completions", json=chat_body())).status_code

    headers = {"Authorization": "Bearer sk-test"}
    async with httpx.AsyncClient(base_url=up.openai_base, headers=headers) as client:
        statuses = await asyncio.gather(*(one(client) for _ in range(50)))

    assert statuses == [200] * 50
    assert len(up.requests) == 50


def test_in_thread_serves_sync_clients() -> None:
    with Upstream.in_thread() as up:
        up.script(RateLimited(retry_after=2), Ok(content="from the thread"))
        headers = {"Authorization": "Bearer sk-test"}
        with httpx.Client(base_url=up.openai_base, headers=headers) as client:
            limited = client.post("/chat/completions", json=chat_body())
            answered = client.post("/chat/completions", json=chat_body())

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert answered.json()["choices"][0]["message"]["content"] == "from the thread"
    assert len(up.requests) == 2


async def test_official_openai_sdk_in_a_worker_thread(up: Upstream) -> None:
    openai = pytest.importorskip(
        "openai", reason="the openai SDK is not installed in this venv (not a dependency)"
    )
    up.script(RateLimited(retry_after=0), Ok(content="sdk ok"))

    def call() -> Any:
        client = openai.OpenAI(base_url=up.openai_base, api_key="sk-test", max_retries=2)
        with client:
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
            )

    completion = await asyncio.to_thread(call)

    assert completion.choices[0].message.content == "sdk ok"
    assert completion.usage.prompt_tokens == 6
    assert len(up.requests) == 2  # the SDK retried the 429
