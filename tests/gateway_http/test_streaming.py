"""Streaming over real HTTP: chunks as they arrive, usage from the provider or counted, and
metered on every ending: finished, broken upstream, caller gone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway_http.conftest import ALIAS, Harness
from tests.gateway_http.test_chat import events_of, held
from tests.upstream.server import CutStream, Hang, Ok, ServerError, SlowFirstToken

MESSAGES = [{"role": "user", "content": "outlook keeps asking for my password"}]
PATH = "/v1/chat/completions"


def data_events(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            payload = block.removeprefix("data: ")
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def wait_for_events(platform: Platform, tenant: TenantFixture, count: int) -> list[Any]:
    await platform.gateway.drain()
    await platform.meter.idle()
    for _ in range(100):
        events = await events_of(platform, tenant)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.02)
    return await events_of(platform, tenant)


async def test_a_stream_relays_chunks_and_bills_the_providers_usage(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(Ok(content="Clear the cached credentials in Windows", prompt_tokens=21))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-deskpilot-deployment"] == "primary"
    events = data_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Clear the cached credentials in Windows"
    # usage was asked upstream for metering, but the caller did not ask: no usage chunk
    assert all(c["choices"] for c in chunks)
    assert gw.requests_to()[0].json["stream_options"] == {"include_usage": True}
    [event] = await events_of(platform, tenant_a)  # durable before [DONE]
    assert (event.input_tokens, event.output_tokens) == (21, 6)
    assert event.outcome == "ok"


async def test_a_caller_asking_for_usage_gets_the_usage_chunk(
    server: str, gw: Harness, tenant_a: TenantFixture
) -> None:
    body = {
        "model": ALIAS,
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post(PATH, json=body, headers=tenant_a.headers)
    usage_chunks = [e for e in data_events(response.text)[:-1] if e.get("usage")]
    assert len(usage_chunks) == 1
    assert usage_chunks[0]["choices"] == []


async def test_without_provider_usage_the_stream_is_counted(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(Ok(content="Restart the print spooler service", usage=False))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post(PATH, json=body, headers=tenant_a.headers)
    assert data_events(response.text)[-1] == "[DONE]"
    [event] = await events_of(platform, tenant_a)
    assert event.output_tokens > 0
    assert event.input_tokens > 0
    assert event.outcome == "ok"


async def test_an_upstream_cut_mid_stream_ends_with_an_error_event_and_bills_what_came(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(CutStream(after_chunks=2))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 200
    events = data_events(response.text)
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "upstream_failed"
    assert len(events) >= 3  # the chunks that came, then the error
    [event] = await events_of(platform, tenant_a)
    assert event.outcome == "error"
    assert event.output_tokens > 0  # what was generated before the cut
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_a_failure_before_the_first_chunk_falls_back_or_is_an_error_response(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(ServerError(500), ServerError(500))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_failed"
    assert await events_of(platform, tenant_a) == []
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_a_client_that_disconnects_mid_stream_is_billed_for_what_was_generated(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    # The answer's first chunks come at once, then the upstream stalls: the caller leaves.
    gw.up.script(CutStream(after_chunks=3, pause=3.0))
    gw.deploy({ALIAS: [gw.deployment(read_timeout=5.0)]}, default_alias=ALIAS)
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    async with (
        httpx.AsyncClient(base_url=server) as http,
        http.stream("POST", PATH, json=body, headers=tenant_a.headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                break  # one chunk read, then the connection goes
    [event] = await wait_for_events(platform, tenant_a, 1)
    assert event.outcome == "cancelled"
    assert event.input_tokens > 0
    assert event.output_tokens > 0
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_a_stalled_stream_the_client_abandons_is_cancelled_and_billed(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(SlowFirstToken(seconds=0.2, then=Ok(content="one two three four five")))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    stream = await platform.gateway.stream(tenant=tenant_a.context, body=body)
    async for data in stream:
        if b'"content":"one' in data:
            break
    await stream.aclose()  # the Python API's way of leaving early
    [event] = await events_of(platform, tenant_a)
    assert event.outcome == "cancelled"
    assert event.output_tokens >= 1
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_a_hanging_upstream_times_out_before_the_first_chunk(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.deploy({ALIAS: [gw.deployment(read_timeout=0.3, max_retries=0)]}, default_alias=ALIAS)
    gw.up.script(Hang(seconds=3))
    body = {"model": ALIAS, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=server) as http:
        response = await http.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 502
    assert response.json()["error"]["tried"][0]["error"] == "timeout"
    assert await events_of(platform, tenant_a) == []


async def test_an_anthropic_deployment_answers_in_openai_shape_streamed_and_not(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    from tests.gateway.test_anthropic import claude

    gw.deploy({"claude": [claude(gw.up, name="claude-1")]}, default_alias="claude")
    async with httpx.AsyncClient(base_url=server) as http:
        plain = await http.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
        streamed = await http.post(
            PATH, json={"messages": MESSAGES, "stream": True}, headers=tenant_a.headers
        )
    assert plain.status_code == 200, plain.text
    assert plain.json()["object"] == "chat.completion"
    assert plain.headers["x-deskpilot-deployment"] == "claude-1"
    events = data_events(streamed.text)
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    recorded = await events_of(platform, tenant_a)
    assert [e.provider for e in recorded] == ["anthropic", "anthropic"]
    assert all(e.input_tokens > 0 and e.output_tokens > 0 for e in recorded)


async def test_a_litellm_deployment_serves_through_the_routes_and_is_metered(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    from deskpilot.gateway.providers.litellm_adapter import litellm_installed
    from tests.gateway.test_litellm import litellm_deployment

    if not litellm_installed():
        pytest.skip("LiteLLM is not installed")
    gw.deploy({"tail": [litellm_deployment(gw.up)]}, default_alias="tail")
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        plain = await http.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
        streamed = await http.post(
            PATH, json={"messages": MESSAGES, "stream": True}, headers=tenant_a.headers
        )
    assert plain.status_code == 200, plain.text
    assert plain.headers["x-deskpilot-deployment"] == "tail"
    assert plain.json()["choices"][0]["message"]["content"]
    assert data_events(streamed.text)[-1] == "[DONE]"
    recorded = await events_of(platform, tenant_a)
    assert [(e.provider, e.provider_model) for e in recorded] == [
        ("litellm", "openai/gpt-4o-mini")
    ] * 2
    assert all(e.input_tokens > 0 and e.output_tokens > 0 for e in recorded)
