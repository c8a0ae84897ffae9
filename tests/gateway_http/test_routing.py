"""Routing per tier and per tenant: allowed aliases, overrides, defaults, /v1/models."""

from __future__ import annotations

import httpx

from deskpilot.core.context import OperatorContext
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import TierUpdate
from tests.conftest import TenantFixture, new_tenant
from tests.gateway_http.conftest import ALIAS, Harness, configure

MESSAGES = [{"role": "user", "content": "reset my password"}]
PATH = "/v1/chat/completions"


def two_aliases(gw: Harness) -> None:
    gw.deploy(
        {
            ALIAS: [gw.deployment("small-1", model="gpt-4o-mini")],
            "large": [gw.deployment("large-1", model="gpt-4o")],
        },
        default_alias=ALIAS,
    )


async def test_unknown_alias_is_404_model_not_found(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    response = await client.post(
        PATH, json={"model": "gpt-17", "messages": MESSAGES}, headers=tenant_a.headers
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert gw.requests_to() == []


async def test_tenant_allow_list_refuses_other_aliases_and_hides_them(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    two_aliases(gw)
    tenant = await configure(
        platform, operator, tenant_a, {"gateway": {"allowed_aliases": [ALIAS]}}
    )
    refused = await client.post(
        PATH, json={"model": "large", "messages": MESSAGES}, headers=tenant.headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert gw.requests_to() == []
    listed = await client.get("/v1/models", headers=tenant.headers)
    assert [m["id"] for m in listed.json()["data"]] == [ALIAS]
    # another tenant, no allow-list: both
    other = await client.get("/v1/models", headers=tenant_b.headers)
    assert [m["id"] for m in other.json()["data"]] == [ALIAS, "large"]
    allowed = await client.post(
        PATH, json={"model": "large", "messages": MESSAGES}, headers=tenant_b.headers
    )
    assert allowed.status_code == 200
    assert allowed.headers["x-deskpilot-deployment"] == "large-1"


async def test_tier_layer_routes_every_tenant_of_the_tier(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
) -> None:
    two_aliases(gw)
    admin = platform.admin(operator)
    tier = await admin.get_tier("free")
    try:
        await admin.update_tier(
            "free", TierUpdate(config={"gateway": {"allowed_aliases": [ALIAS]}})
        )
        free = await new_tenant(platform, operator, "freebie", tier="free")
        pro = await new_tenant(platform, operator, "payer", tier="pro")
        body = {"model": "large", "messages": MESSAGES}
        assert (await client.post(PATH, json=body, headers=free.headers)).status_code == 403
        assert (await client.post(PATH, json=body, headers=pro.headers)).status_code == 200
    finally:
        await admin.update_tier("free", TierUpdate(config={"gateway": tier.config.get("gateway")}))


async def test_an_alias_override_gives_one_tenant_another_model_under_the_same_name(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    two_aliases(gw)
    tenant = await configure(
        platform,
        operator,
        tenant_a,
        {"gateway": {"alias_overrides": {ALIAS: "large"}, "default_alias": ALIAS}},
    )
    for body in ({"model": ALIAS, "messages": MESSAGES}, {"messages": MESSAGES}):
        overridden = await client.post(PATH, json=body, headers=tenant.headers)
        assert overridden.status_code == 200
        assert overridden.headers["x-deskpilot-deployment"] == "large-1"
        plain = await client.post(PATH, json=body, headers=tenant_b.headers)
        assert plain.headers["x-deskpilot-deployment"] == "small-1"
    models = {r.json["model"] for r in gw.requests_to()}
    assert models == {"gpt-4o", "gpt-4o-mini"}


async def test_several_deployments_of_an_alias_share_the_load(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.deploy({ALIAS: [gw.deployment("eu"), gw.deployment("us")]}, default_alias=ALIAS)
    served = []
    for _ in range(4):
        response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
        served.append(response.headers["x-deskpilot-deployment"])
    assert sorted(served) == ["eu", "eu", "us", "us"]


async def test_no_default_and_no_model_is_a_400(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.deploy({ALIAS: [gw.deployment()]})
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


async def test_nothing_deployed_is_a_503_saying_what_to_configure(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
) -> None:
    gw.deploy({})
    tenant = await configure(platform, operator, tenant_a, {"gateway": {"default_alias": "x"}})
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant.headers)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_provider"
    assert "deploy" in error["message"]


async def test_a_keyless_deployment_of_a_keyed_provider_is_a_503(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    keyless = gw.deployment("openai-no-key", api_base="https://api.openai.com/v1", key=None)
    gw.deploy({ALIAS: [keyless]}, default_alias=ALIAS)
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 503
    assert "api_key" in response.json()["error"]["message"]
