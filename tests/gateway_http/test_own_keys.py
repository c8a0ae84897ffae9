"""Tenants' own provider keys on the request path: used upstream for their tenant only, billed at
provider cost 0, never in a response or a log line; and stored deployments served once created."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from deskpilot.core.context import OperatorContext
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway.support import API_KEY
from tests.gateway_http.conftest import Harness, configure
from tests.gateway_http.test_chat import events_of
from tests.gateway_store_support import OPERATOR, OWN_KEY, Deployments, on_tier
from tests.upstream.server import ServerError, Upstream

MESSAGES = [{"role": "user", "content": "the wifi in building B is down"}]
PATH = "/v1/chat/completions"


def authorization_sent(gw: Harness) -> list[str]:
    return [r.headers.get("authorization", "") for r in gw.requests_to()]


async def test_an_enterprise_tenants_own_key_is_used_and_billed_at_cost_zero(
    client: httpx.AsyncClient,
    platform: Platform,
    gw: Harness,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    own = await on_tier(platform, tenant_a, "enterprise")
    await platform.tenant(own.context).provider_keys.set("openai", OWN_KEY)
    gw.up.script(ServerError(500))  # a failure too must not echo the key anywhere
    responses = [
        await client.post(PATH, json={"messages": MESSAGES}, headers=own.headers),
        await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_b.headers),
    ]
    assert [r.status_code for r in responses] == [200, 200]
    assert authorization_sent(gw) == [f"Bearer {OWN_KEY}"] * 2 + [f"Bearer {API_KEY}"]
    [own_event] = await events_of(platform, own)
    assert own_event.provider_cost == 0
    assert own_event.billed_amount == 0
    assert own_event.input_tokens > 0
    [other_event] = await events_of(platform, tenant_b)
    assert other_event.provider_cost > 0
    for response in responses:
        assert OWN_KEY not in response.text
        assert OWN_KEY not in str(response.headers)
    assert OWN_KEY not in caplog.text
    assert OWN_KEY[-8:] not in caplog.text


async def test_a_tier_without_own_keys_ignores_a_stored_key(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    own = await on_tier(platform, tenant_a, "enterprise")
    await platform.tenant(own.context).provider_keys.set("openai", OWN_KEY)
    back = await on_tier(platform, own, "pro")  # pro: gateway.byo_keys off
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=back.headers)
    assert response.status_code == 200
    assert authorization_sent(gw) == [f"Bearer {API_KEY}"]


async def test_required_own_keys_without_one_is_a_503_saying_what_to_store(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
) -> None:
    tenant = await configure(platform, operator, tenant_a, {"gateway": {"byo_keys": "required"}})
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant.headers)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_provider"
    assert "/v1/provider-keys/" in error["message"]
    assert gw.requests_to() == []


async def test_a_deployment_stored_through_the_admin_api_is_served(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    platform: Platform,
    deployments: Deployments,
    tenant_a: TenantFixture,
) -> None:
    async with Upstream() as up:
        view = await deployments.create(
            api_base=up.openai_base, api_key="sk-stored-" + "s" * 20, rpm=1000
        )
        for _ in range(100):  # the change notice reloads the catalogue
            if view.alias in platform.gateway.catalogue.deployments:
                break
            await asyncio.sleep(0.02)
        body = {"model": view.alias, "messages": MESSAGES}
        response = await client.post(PATH, json=body, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        assert response.headers["x-deskpilot-deployment"] == view.name
        await platform.admin(OPERATOR).deployments.delete(view.name)
        for _ in range(100):
            if view.alias not in platform.gateway.catalogue.deployments:
                break
            await asyncio.sleep(0.02)
        gone = await client.post(PATH, json=body, headers=tenant_a.headers)
        assert gone.status_code == 404
