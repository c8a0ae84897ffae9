"""Each scripted fault, observed the way a client sees it. No wall-clock assertions: delays are
shown by a short client timeout expiring against a much longer scripted delay."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from tests.upstream.conftest import chat_body
from tests.upstream.server import (
    CutStream,
    Hang,
    Ok,
    RateLimited,
    Reset,
    ServerError,
    SlowFirstToken,
    ToolCall,
    Upstream,
)
from tests.upstream.sse import SseEvent, iter_events, stream_into

SHORT = httpx.Timeout(5.0, read=0.2)


@pytest.mark.parametrize(("retry_after", "header"), [(1, "1"), (2.0, "2"), (0.5, "0.5")])
async def test_rate_limited_sends_retry_after(
    up: Upstream, openai_http: httpx.AsyncClient, retry_after: float, header: str
) -> None:
    up.script(RateLimited(retry_after=retry_after))

    response = await openai_http.post("/chat/completions", json=chat_body())

    assert response.status_code == 429
    assert response.headers["retry-after"] == header
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert error["message"]


async def test_rate_limited_without_retry_after(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(RateLimited(retry_after=None))

    response = await openai_http.post("/chat/completions", json=chat_body())

    assert response.status_code == 429
    assert "retry-after" not in response.headers


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_status_and_body(
    up: Upstream, openai_http: httpx.AsyncClient, status: int
) -> None:
    up.script(ServerError(status))

    response = await openai_http.post("/embeddings", json={"model": "e", "input": "x"})

    assert response.status_code == status
    assert response.json()["error"]["type"] == "server_error"


async def test_hang_makes_the_client_time_out(up: Upstream, openai_http: httpx.AsyncClient) -> None:
    up.script(Hang(seconds=30))

    with pytest.raises(httpx.ReadTimeout):
        await openai_http.post("/chat/completions", json=chat_body(), timeout=SHORT)
    answered = await openai_http.post("/chat/completions", json=chat_body())

    assert answered.status_code == 200
    assert up.connections_opened == 2  # the timed-out connection was not reused


async def test_reset_drops_the_connection_without_a_response(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(Reset())

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await openai_http.post("/chat/completions", json=chat_body())

    assert (await openai_http.post("/chat/completions", json=chat_body())).status_code == 200
    assert len(up.requests) == 2


@pytest.mark.parametrize("after_chunks", [0, 2, 7])
async def test_cut_stream_sends_n_content_chunks_then_breaks(
    up: Upstream, openai_http: httpx.AsyncClient, after_chunks: int
) -> None:
    up.script(CutStream(after_chunks=after_chunks))
    received: list[SseEvent] = []

    body = chat_body(stream=True, stream_options={"include_usage": True})
    with pytest.raises(httpx.RemoteProtocolError):
        await stream_into(openai_http, "/chat/completions", body, received)

    assert "[DONE]" not in [event.data for event in received]
    deltas = [event.json()["choices"][0]["delta"] for event in received]
    assert deltas[0]["role"] == "assistant"
    assert len([d for d in deltas if d.get("content")]) == after_chunks
    assert all(event.json()["choices"][0]["finish_reason"] is None for event in received)
    assert all("usage" not in event.json() for event in received)


async def test_cut_non_streaming_breaks_after_the_headers(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(CutStream(), CutStream())

    with pytest.raises(httpx.RemoteProtocolError):
        await openai_http.post("/chat/completions", json=chat_body())
    with pytest.raises(httpx.RemoteProtocolError):
        await openai_http.post("/embeddings", json={"model": "e", "input": "x"})


async def test_slow_first_token_delays_the_body_not_the_outcome(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(SlowFirstToken(seconds=30), SlowFirstToken(seconds=0.05, then=Ok(content="late")))

    with pytest.raises(httpx.ReadTimeout):
        await openai_http.post("/chat/completions", json=chat_body(), timeout=SHORT)
    late = await openai_http.post("/chat/completions", json=chat_body())

    assert late.json()["choices"][0]["message"]["content"] == "late"


async def test_slow_first_token_streaming_sends_headers_then_waits(
    up: Upstream, openai_http: httpx.AsyncClient
) -> None:
    up.script(SlowFirstToken(seconds=30), SlowFirstToken(seconds=0.05, then=ToolCall()))
    body = chat_body(stream=True)

    async with openai_http.stream("POST", "/chat/completions", json=body, timeout=SHORT) as slow:
        assert slow.status_code == 200  # the head went out before the delay
        with pytest.raises(httpx.ReadTimeout):
            await slow.aread()
    async with openai_http.stream("POST", "/chat/completions", json=body) as late:
        events = [event async for event in iter_events(late)]

    assert events[-1].data == "[DONE]"
    assert events[-2].json()["choices"][0]["finish_reason"] == "tool_calls"


async def test_malformed_http_gets_400_and_a_closed_connection(up: Upstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()

    answer = await reader.read()
    writer.close()
    await writer.wait_closed()

    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_stop_drops_hanging_and_idle_connections_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    headers = {"Authorization": "Bearer sk-test"}
    async with Upstream() as up:
        idle = httpx.AsyncClient(base_url=up.openai_base, headers=headers)
        impatient = httpx.AsyncClient(base_url=up.openai_base, headers=headers, timeout=SHORT)
        assert (await idle.post("/chat/completions", json=chat_body())).status_code == 200
        up.script(Hang(seconds=60))
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post("/chat/completions", json=chat_body())

        await up.stop()  # the hang is still sleeping and the idle connection still open

        with pytest.raises(httpx.TransportError):
            await idle.post("/chat/completions", json=chat_body())
        await idle.aclose()
        await impatient.aclose()

    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_in_thread_raises_in_the_caller_when_it_cannot_start() -> None:
    with (
        Upstream.in_thread() as up,
        pytest.raises(OSError, match="in use"),
        Upstream.in_thread(port=up.port),
    ):
        pytest.fail("a second server bound a port that is in use")
