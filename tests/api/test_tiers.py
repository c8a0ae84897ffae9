"""Operator tier routes: list, create, patch the config layer, delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import admin_key, assert_problem, bearer, create_tenant
from tests.conftest import TenantFixture, unique_slug


async def new_tier(
    client: httpx.AsyncClient, admin: dict[str, str], config: dict[str, Any] | None = None
) -> dict[str, Any]:
    name = unique_slug("tier")
    response = await client.post(
        "/admin/tiers",
        json={
            "name": name,
            "display_name": "Custom",
            "description": "made by a test",
            "config": config or {},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    tier: dict[str, Any] = response.json()
    return tier


async def test_seeded_tiers_are_listed(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get("/admin/tiers", headers=admin_headers)
    assert response.status_code == 200
    tiers = {t["name"]: t for t in response.json()}
    assert {"free", "pro", "enterprise"} <= tiers.keys()
    assert tiers["free"]["config"]["keys"]["max_active_keys"] == 3
    shown = await client.get("/admin/tiers/free", headers=admin_headers)
    assert shown.json()["name"] == "free"


async def test_create_tier_and_put_a_tenant_on_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tier = await new_tier(client, admin_headers, {"keys": {"max_active_keys": 2}})
    assert tier["display_name"] == "Custom"
    assert tier["config"] == {"keys": {"max_active_keys": 2}}
    assert (await client.get(f"/admin/tiers/{tier['name']}", headers=admin_headers)).json() == tier
    listed = (await client.get("/admin/tiers", headers=admin_headers)).json()
    assert tier in listed

    slug = await create_tenant(client, admin_headers, "ontier", tier=tier["name"])
    key = await admin_key(client, admin_headers, slug)
    view = (await client.get("/v1/config", headers=bearer(key["secret"]))).json()
    assert view["tier"] == tier["name"]
    assert view["tier_layer"] == {"keys": {"max_active_keys": 2}}
    assert view["effective"]["keys"]["max_active_keys"] == 2


async def test_duplicate_tier_is_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tier = await new_tier(client, admin_headers)
    response = await client.post(
        "/admin/tiers", json={"name": tier["name"], "display_name": "Again"}, headers=admin_headers
    )
    assert_problem(response, 409, "conflict")
    shown = await client.get(f"/admin/tiers/{tier['name']}", headers=admin_headers)
    assert shown.json() == tier


@pytest.mark.parametrize("name", ["Pro", "ab", "-x-", "tier_one", "a" * 41, "a--b", ""])
async def test_tier_name_must_be_a_slug(
    client: httpx.AsyncClient, admin_headers: dict[str, str], name: str
) -> None:
    response = await client.post(
        "/admin/tiers", json={"name": name, "display_name": "Bad"}, headers=admin_headers
    )
    assert_problem(response, 422, "validation_error", paths=("name",))
    names = {t["name"] for t in (await client.get("/admin/tiers", headers=admin_headers)).json()}
    assert name not in names


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"keys": {"max_active_keys": 0}}, "keys.max_active_keys"),
        ({"keys": {"allowed_scopes": ["root"]}}, "keys.allowed_scopes.0"),
        ({"general": {"timezone": "Atlantis/Capital"}}, "general.timezone"),
        ({"invoicing": {"plan": "gold"}}, "invoicing"),
        ({"keys": "many"}, "keys"),
    ],
)
async def test_invalid_tier_config_is_422_with_path(
    client: httpx.AsyncClient, admin_headers: dict[str, str], config: dict[str, Any], path: str
) -> None:
    name = unique_slug("badtier")
    response = await client.post(
        "/admin/tiers",
        json={"name": name, "display_name": "Bad", "config": config},
        headers=admin_headers,
    )
    assert_problem(response, 422, "validation_error", paths=(path,))
    assert_problem(
        await client.get(f"/admin/tiers/{name}", headers=admin_headers), 404, "not_found"
    )


async def test_patch_tier_merges_config(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tier = await new_tier(client, admin_headers, {"keys": {"max_active_keys": 2}})
    slug = await create_tenant(client, admin_headers, "tierpatch", tier=tier["name"])
    response = await client.patch(
        f"/admin/tiers/{tier['name']}",
        json={"display_name": "Renamed", "config": {"keys": {"max_lifetime_days": 90}}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["display_name"] == "Renamed"
    assert patched["description"] == "made by a test"
    assert patched["config"] == {"keys": {"max_active_keys": 2, "max_lifetime_days": 90}}
    view = (await client.get(f"/admin/tenants/{slug}/config", headers=admin_headers)).json()
    assert view["effective"]["keys"]["max_lifetime_days"] == 90

    removed = await client.patch(
        f"/admin/tiers/{tier['name']}",
        json={"config": {"keys": {"max_active_keys": None}}},
        headers=admin_headers,
    )
    assert removed.json()["config"] == {"keys": {"max_lifetime_days": 90}}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"config": {"keys": {"max_active_keys": -1}}}, "keys.max_active_keys"),
        ({"config": {"security": {"ip_allowlist": ["nope"]}}}, "security.ip_allowlist.0"),
        ({"display_name": "Ok", "config": {"general": {"locale": "!!"}}}, "general.locale"),
        ({"display_name": ""}, "display_name"),
        ({"config": ["keys"]}, "config"),
    ],
)
async def test_refused_tier_patch_changes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any], path: str
) -> None:
    tier = await new_tier(client, admin_headers, {"keys": {"max_active_keys": 4}})
    response = await client.patch(f"/admin/tiers/{tier['name']}", json=body, headers=admin_headers)
    assert_problem(response, 422, "validation_error", paths=(path,))
    shown = await client.get(f"/admin/tiers/{tier['name']}", headers=admin_headers)
    assert shown.json() == tier
    audited = await platform_audit_for(client, admin_headers, tier["name"])
    assert [e["action"] for e in audited] == ["tier.create"]


async def test_delete_tier_in_use_is_409_then_204(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tier = await new_tier(client, admin_headers)
    slug = await create_tenant(client, admin_headers, "tieruser", tier=tier["name"])
    refused = await client.delete(f"/admin/tiers/{tier['name']}", headers=admin_headers)
    assert_problem(refused, 409, "conflict")
    assert (await client.get(f"/admin/tiers/{tier['name']}", headers=admin_headers)).json() == tier
    assert (await client.get(f"/admin/tenants/{slug}", headers=admin_headers)).json()["tier"] == (
        tier["name"]
    )

    moved = await client.patch(
        f"/admin/tenants/{slug}", json={"tier": "pro"}, headers=admin_headers
    )
    assert moved.status_code == 200
    deleted = await client.delete(f"/admin/tiers/{tier['name']}", headers=admin_headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert "x-request-id" in deleted.headers
    assert_problem(
        await client.get(f"/admin/tiers/{tier['name']}", headers=admin_headers), 404, "not_found"
    )
    assert_problem(
        await client.delete(f"/admin/tiers/{tier['name']}", headers=admin_headers), 404, "not_found"
    )


async def platform_audit_for(
    client: httpx.AsyncClient, admin: dict[str, str], target: str
) -> list[dict[str, Any]]:
    response = await client.get("/admin/audit", params={"limit": 1000}, headers=admin)
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["target"] == target]


async def test_tier_changes_are_in_the_platform_audit_log(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tier = await new_tier(client, admin_headers, {"keys": {"max_active_keys": 2}})
    name = tier["name"]
    patched = await client.patch(
        f"/admin/tiers/{name}",
        json={"config": {"keys": {"max_active_keys": 3}}},
        headers=admin_headers,
    )
    assert patched.status_code == 200
    refused = await client.patch(
        f"/admin/tiers/{name}",
        json={"config": {"keys": {"max_active_keys": 0}}},
        headers=admin_headers,
    )
    assert_problem(refused, 422, "validation_error", paths=("keys.max_active_keys",))
    assert (await client.delete(f"/admin/tiers/{name}", headers=admin_headers)).status_code == 204

    entries = await platform_audit_for(client, admin_headers, name)
    assert [e["action"] for e in entries] == ["tier.delete", "tier.update", "tier.create"]
    assert all(e["actor"].endswith("admin") for e in entries)
    deleted, updated, created = entries
    assert created["old_value"] is None
    assert created["new_value"]["config"] == {"keys": {"max_active_keys": 2}}
    assert updated["old_value"]["config"] == {"keys": {"max_active_keys": 2}}
    assert updated["new_value"]["config"] == {"keys": {"max_active_keys": 3}}
    assert deleted["old_value"] == {"config": {"keys": {"max_active_keys": 3}}}
    assert deleted["new_value"] is None


async def test_platform_audit_is_for_operators_only(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    assert_problem(await client.get("/admin/audit", headers=tenant_a.headers), 403, "forbidden")
    assert_problem(await client.get("/admin/audit"), 401, "unauthenticated")
    for limit in ("0", "1001", str(10**30)):
        response = await client.get("/admin/audit", params={"limit": limit}, headers=admin_headers)
        assert_problem(response, 422, "validation_error", paths=("query.limit",))
    page = await client.get("/admin/audit", params={"limit": 2}, headers=admin_headers)
    assert page.status_code == 200
    assert len(page.json()) <= 2


async def test_unknown_tier_routes_are_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ghost = unique_slug("ghosttier")
    for method, body in (("get", None), ("patch", {"display_name": "x"}), ("delete", None)):
        response = await client.request(
            method, f"/admin/tiers/{ghost}", json=body, headers=admin_headers
        )
        assert_problem(response, 404, "not_found")
