"""The non-streamed chat path over HTTP: pass-through, routing headers, durable metering,
OpenAI-shaped refusals that bill nothing and hold nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from deskpilot.app import create_app
from deskpilot.core.context import OperatorContext
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway_http.conftest import ALIAS, Harness, configure
from tests.upstream.server import Ok, ToolCall

MESSAGES = [{"role": "user", "content": "my laptop will not boot after the update"}]
PATH = "/v1/chat/completions"


async def events_of(platform: Platform, tenant: TenantFixture) -> list[Any]:
    now = datetime.now(UTC)
    page = await platform.tenant(tenant.context).usage.events(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=1000
    )
    return list(page.events)


async def held(platform: Platform, tenant: TenantFixture) -> dict[str, Decimal]:
    await platform.gateway.drain()
    await platform.meter.idle()  # holds of answered requests are settled after the commit
    statuses = await platform.tenant(tenant.context).quota_status()
    return {s.dimension.value: s.held for s in statuses}


async def test_a_completion_passes_through_and_is_metered_before_the_answer(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(Ok(content="Hold the power button for ten seconds", prompt_tokens=30))
    body = {"model": ALIAS, "messages": MESSAGES, "temperature": 0.2, "seed": 7}
    response = await client.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "Hold the power button for ten seconds"
    assert response.headers["x-deskpilot-deployment"] == "primary"
    assert response.headers["x-deskpilot-model-alias"] == ALIAS
    assert response.headers["x-deskpilot-attempts"] == "1"

    sent = gw.requests_to()[0].json
    assert sent["model"] == "gpt-4o-mini"  # the deployment's model, not the alias
    assert sent["temperature"] == 0.2
    assert sent["seed"] == 7
    assert sent["max_tokens"] == 1024  # the tier's default cap, reserved and enforced

    [event] = await events_of(platform, tenant_a)
    assert event.component == "gateway"
    assert event.operation == "chat"
    assert event.model_alias == ALIAS
    assert (event.provider, event.provider_model) == ("openai", "gpt-4o-mini")
    assert event.input_tokens == 30
    assert event.output_tokens == 7  # the upstream counts generated words
    assert event.provider_cost > 0
    assert event.billed_amount > event.provider_cost
    assert event.request_id == response.headers["x-request-id"]
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_tool_calls_json_mode_and_n_pass_through(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(ToolCall(name="lookup_ticket", arguments={"id": "INC0042"}))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_ticket",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        }
    ]
    body = {
        "model": ALIAS,
        "messages": MESSAGES,
        "tools": tools,
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "n": 2,
        "max_completion_tokens": 50,
    }
    response = await client.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    call = response.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "lookup_ticket"
    sent = gw.requests_to()[0].json
    assert sent["tools"] == tools
    assert sent["tool_choice"] == "auto"
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["n"] == 2
    assert sent["max_completion_tokens"] == 50
    assert "max_tokens" not in sent


async def test_a_request_without_model_gets_the_default_alias(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-deskpilot-model-alias"] == ALIAS


async def test_a_reused_request_id_is_billed_each_time(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    headers = {**tenant_a.headers, "x-request-id": "same-id-twice"}
    for _ in range(2):
        response = await client.post(PATH, json={"messages": MESSAGES}, headers=headers)
        assert response.status_code == 200
    events = await events_of(platform, tenant_a)
    assert len(events) == 2
    assert all(e.request_id.startswith("same-id-twice.") for e in events)
    assert len({e.request_id for e in events}) == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": ALIAS}, "messages"),
        ({"model": ALIAS, "messages": []}, "messages"),
        ({"model": ALIAS, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": ALIAS, "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": ALIAS, "messages": MESSAGES, "max_tokens": "10"}, "max_tokens"),
        ({"model": ALIAS, "messages": MESSAGES, "n": 0}, "n"),
        ({"model": 5, "messages": MESSAGES}, "model"),
        ([1, 2], "body"),
    ],
)
async def test_a_malformed_body_is_a_400_naming_the_field(
    client: httpx.AsyncClient,
    platform: Platform,
    gw: Harness,
    tenant_a: TenantFixture,
    body: Any,
    param: str,
) -> None:
    response = await client.post(PATH, json=body, headers=tenant_a.headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert gw.requests_to() == []
    assert await events_of(platform, tenant_a) == []


async def test_invalid_json_is_a_400(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    response = await client.post(
        PATH,
        content=b'{"messages": [',
        headers={**tenant_a.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert gw.requests_to() == []


async def test_max_tokens_above_the_tenant_limit_is_refused_before_anything(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
) -> None:
    tenant = await configure(
        platform,
        operator,
        tenant_a,
        {"gateway": {"max_tokens_limit": 100, "default_max_tokens": 50}},
    )
    body = {"model": ALIAS, "messages": MESSAGES, "max_tokens": 60, "n": 2}
    response = await client.post(PATH, json=body, headers=tenant.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "max_tokens"
    assert gw.requests_to() == []
    assert await events_of(platform, tenant) == []
    assert all(v == 0 for v in (await held(platform, tenant)).values())


async def test_an_exhausted_quota_refuses_before_any_upstream_call(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
) -> None:
    tenant = await configure(platform, operator, tenant_a, {"quotas": {"tokens_per_minute": 500}})
    body = {"model": ALIAS, "messages": MESSAGES, "max_tokens": 600}
    response = await client.post(PATH, json=body, headers=tenant.headers)
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "quota_exceeded"
    assert error["quota"] == "tokens_per_minute"
    assert error["limit"] == "500"
    assert "retry-after" in response.headers
    assert gw.requests_to() == []
    assert await events_of(platform, tenant) == []
    assert all(v == 0 for v in (await held(platform, tenant)).values())


async def test_a_key_without_the_llm_scope_is_refused(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    from deskpilot.core.context import Scope
    from deskpilot.tenancy.schemas import KeyCreate

    created = await platform.tenant(tenant_a.context).keys.create(
        KeyCreate(name="reader", scopes=(Scope.USAGE_READ,))
    )
    headers = {"Authorization": f"Bearer {created.secret}"}
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    unauthenticated = await client.post(PATH, json={"messages": MESSAGES})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["type"] == "authentication_error"
    assert gw.requests_to() == []


async def test_a_body_over_the_limit_is_a_413_in_openai_shape(
    platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    settings = platform.resources.settings.model_copy(update={"max_body_bytes": 2048})
    app = create_app(settings=settings, platform=platform)
    transport = httpx.ASGITransport(app=app)
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    async with httpx.AsyncClient(transport=transport, base_url="http://deskpilot.test") as small:
        response = await small.post(PATH, json=big, headers=tenant_a.headers)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["type"] == "invalid_request_error"
    assert gw.requests_to() == []
