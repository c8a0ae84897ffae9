"""HTTP: operator deployments (/admin/deployments) and tenants' own provider keys
(/v1/provider-keys). Bad input is a 4xx problem document and writes nothing; no response ever
holds a key or a header value."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from deskpilot.platform import Platform
from tests.api.support import admin_key, assert_problem, bearer, create_tenant
from tests.gateway_store_support import (
    OPERATOR_KEY,
    OWN_KEY,
    Deployments,
    deployment_body,
    unique,
)

HEADER_VALUE = "proxy-token-" + "P" * 24


def no_secret(response: httpx.Response) -> None:
    for secret in (OPERATOR_KEY, OWN_KEY, HEADER_VALUE):
        assert secret not in response.text


def url(name: str) -> str:
    return "/admin/deployments/" + quote(name, safe="")


async def listed(client: httpx.AsyncClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/admin/deployments", headers=admin)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def test_operator_crud(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    deployments: Deployments,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alias = unique("gpt")
    body = deployment_body(
        alias=alias,
        name=None,
        api_key=OPERATOR_KEY,
        extra_headers={"X-Proxy-Token": HEADER_VALUE},
        price={"input": "2.5", "cached_input": 1.25, "output": "10"},
        rpm=100,
    )
    created = await client.post("/admin/deployments", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    no_secret(created)
    view = created.json()
    deployments.track(view["name"])
    assert view["name"] == f"{alias}#0"
    assert view["has_api_key"] is True
    assert view["extra_header_names"] == ["X-Proxy-Token"]
    assert view["price"] == {
        "input": "2.500000000000",
        "cached_input": "1.250000000000",
        "output": "10.000000000000",
    }
    assert (view["source"], view["family"], view["rpm"]) == ("api", "openai", 100)

    shown = await client.get(url(view["name"]), headers=admin_headers)
    assert shown.json() == view
    all_ = await listed(client, admin_headers)
    assert view in all_

    patched = await client.patch(
        url(view["name"]), json={"rpm": None, "api_key": None}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["rpm"], patched.json()["has_api_key"]) == (None, False)

    deleted = await client.delete(url(view["name"]), headers=admin_headers)
    assert deleted.status_code == 204
    assert "request" in caplog.text  # the access lines were captured, and hold no secret
    for secret in (OPERATOR_KEY, HEADER_VALUE):
        assert secret not in caplog.text
    assert_problem(await client.get(url(view["name"]), headers=admin_headers), 404, "not_found")
    assert_problem(await client.delete(url(view["name"]), headers=admin_headers), 404, "not_found")


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"api_base": "not-a-url"}, "api_base"),
        ({"extra_headers": {"authorization": HEADER_VALUE}}, "extra_headers"),
        ({"price": {"input": "NaN", "output": "1"}}, "price.input"),
        ({"price": {"input": "1e30", "output": "1"}}, "price.input"),
        ({"tpm": "lots"}, "tpm"),
        ({"provider": "bedrock"}, "provider"),
        ({"alias": ""}, "alias"),
    ],
)
async def test_bad_deployments_are_422_and_write_nothing(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    overrides: dict[str, Any],
    path: str,
) -> None:
    before = await listed(client, admin_headers)
    body = deployment_body(api_key=OPERATOR_KEY, **overrides)
    response = await client.post("/admin/deployments", json=body, headers=admin_headers)
    assert_problem(response, 422, "validation_error", paths=(path,))
    no_secret(response)
    assert await listed(client, admin_headers) == before


async def test_conflicts_and_malformed_bodies(
    client: httpx.AsyncClient, admin_headers: dict[str, str], deployments: Deployments
) -> None:
    view = await deployments.create()
    again = await client.post(
        "/admin/deployments", json=deployment_body(name=view.name), headers=admin_headers
    )
    assert_problem(again, 409, "conflict")
    malformed = await client.post(
        "/admin/deployments",
        content=b'{"alias": ',
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert_problem(malformed, 400, "malformed_json")
    bad_patch = await client.patch(url(view.name), json={"model": None}, headers=admin_headers)
    assert_problem(bad_patch, 422, "validation_error", paths=("model",))
    missing = await client.patch(url(unique("nope")), json={"rpm": 1}, headers=admin_headers)
    assert_problem(missing, 404, "not_found")


async def test_litellm_entries_can_be_pasted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], deployments: Deployments
) -> None:
    entry = {
        "model_name": unique("lite"),
        "litellm_params": {
            "model": "azure/gpt-4o-eu",
            "api_base": "https://acme.openai.azure.com/openai/v1",
            "api_key": OPERATOR_KEY,
        },
        "model_info": {"id": unique("azure-eu")},
    }
    created = await client.post("/admin/deployments", json=entry, headers=admin_headers)
    assert created.status_code == 201, created.text
    no_secret(created)
    view = created.json()
    deployments.track(view["name"])
    assert (view["name"], view["family"], view["model"]) == (
        entry["model_info"]["id"],
        "azure",
        "gpt-4o-eu",
    )
    env = {"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "os.environ/K"}}
    refused = await client.post("/admin/deployments", json=env, headers=admin_headers)
    assert_problem(refused, 422, "validation_error", paths=("litellm_params",))


async def test_admin_routes_need_the_operator(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = await create_tenant(client, admin_headers, "notop")
    key = await admin_key(client, admin_headers, slug)
    assert_problem(
        await client.get("/admin/deployments", headers=bearer(key["secret"])), 403, "forbidden"
    )
    assert_problem(await client.post("/admin/deployments", json={}), 401, "unauthenticated")


async def test_tenant_provider_keys(
    client: httpx.AsyncClient, admin_headers: dict[str, str], deployments: Deployments
) -> None:
    family = await deployments.family()
    slug = await create_tenant(client, admin_headers, "byo", tier="enterprise")
    headers = bearer((await admin_key(client, admin_headers, slug))["secret"])
    stored = await client.put(
        f"/v1/provider-keys/{family}", json={"api_key": OWN_KEY}, headers=headers
    )
    assert stored.status_code == 200, stored.text
    no_secret(stored)
    assert (stored.json()["family"], stored.json()["hint"]) == (family, "…zyXq")
    listing = await client.get("/v1/provider-keys", headers=headers)
    assert listing.json() == [stored.json()]
    no_secret(listing)
    audit = await client.get("/v1/audit", headers=headers)
    assert audit.json()[0]["action"] == "provider_key.set"
    no_secret(audit)
    deleted = await client.delete(f"/v1/provider-keys/{family}", headers=headers)
    assert deleted.status_code == 204
    assert (await client.get("/v1/provider-keys", headers=headers)).json() == []
    gone = await client.delete(f"/v1/provider-keys/{family}", headers=headers)
    assert_problem(gone, 404, "not_found")


async def test_tenant_refusals(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    deployments: Deployments,
    platform: Platform,
) -> None:
    family = await deployments.family()
    pro = await create_tenant(client, admin_headers, "nobyo", tier="pro")
    pro_headers = bearer((await admin_key(client, admin_headers, pro))["secret"])
    off = await client.put(
        f"/v1/provider-keys/{family}", json={"api_key": OWN_KEY}, headers=pro_headers
    )
    assert_problem(off, 403, "byo_keys_disabled")
    no_secret(off)

    slug = await create_tenant(client, admin_headers, "byo", tier="enterprise")
    headers = bearer((await admin_key(client, admin_headers, slug))["secret"])
    cases = [
        ("never-deployed", {"api_key": OWN_KEY}, 422, "validation_error", "family"),
        (family, {"api_key": "has whitespace " + OWN_KEY}, 422, "validation_error", "api_key"),
        (family, {"api_key": ""}, 422, "validation_error", "api_key"),
        (family, {"key": OWN_KEY}, 422, "validation_error", "api_key"),
        ("bad%20family", {"api_key": OWN_KEY}, 422, "validation_error", "path.family"),
    ]
    for fam, body, status, type_, path in cases:
        response = await client.put(f"/v1/provider-keys/{fam}", json=body, headers=headers)
        assert_problem(response, status, type_, paths=(path,))
        no_secret(response)
    assert (await client.get("/v1/provider-keys", headers=headers)).json() == []

    llm = await admin_key(client, admin_headers, slug, scopes=("llm",))
    scoped = await client.get("/v1/provider-keys", headers=bearer(llm["secret"]))
    assert_problem(scoped, 403, "missing_scope")
    assert_problem(await client.get("/v1/provider-keys"), 401, "unauthenticated")


async def test_openapi_describes_the_routes_and_their_problems(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, methods in {
        "/admin/deployments": {"get", "post"},
        "/admin/deployments/{name}": {"get", "patch", "delete"},
        "/v1/provider-keys": {"get"},
        "/v1/provider-keys/{family}": {"put", "delete"},
    }.items():
        assert methods <= spec["paths"][path].keys(), path
        for method in methods:
            assert "422" in spec["paths"][path][method]["responses"]
    create = spec["components"]["schemas"]["DeploymentCreate"]
    assert {"alias", "provider", "model", "api_base"} <= set(create["required"])
    view = spec["components"]["schemas"]["DeploymentView"]["properties"]
    assert "api_key" not in view
    assert "has_api_key" in view
