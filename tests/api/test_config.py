"""Tenant configuration over HTTP: layers, merge patches, validation, editability, audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import assert_problem, audit_entries, snapshot
from tests.conftest import TenantFixture


async def patch_own(
    client: httpx.AsyncClient, tenant: TenantFixture, patch: dict[str, Any]
) -> dict[str, Any]:
    response = await client.patch("/v1/config", json=patch, headers=tenant.headers)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def test_view_shows_effective_config_and_layers(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    pro = (await client.get("/admin/tiers/pro", headers=admin_headers)).json()
    response = await client.get("/v1/config", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["tenant_id"] == tenant_a.slug
    assert view["tier"] == "pro"
    assert view["revision"] == 0
    assert view["overrides"] == {}
    assert view["tier_layer"] == pro["config"]
    assert view["platform"]["keys"]["max_active_keys"] == 20
    assert view["tier_layer"]["keys"]["max_active_keys"] != 20
    assert view["effective"]["keys"]["max_active_keys"] == pro["config"]["keys"]["max_active_keys"]
    assert view["effective"]["general"] == {"timezone": "UTC", "locale": "en"}
    assert view["effective"]["security"] == {"ip_allowlist": []}


async def test_merge_patch_sets_and_null_removes(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    first = await patch_own(client, tenant_a, {"general": {"timezone": "Europe/Paris"}})
    assert first["revision"] == 1
    assert first["overrides"] == {"general": {"timezone": "Europe/Paris"}}
    assert first["effective"]["general"] == {"timezone": "Europe/Paris", "locale": "en"}

    second = await patch_own(client, tenant_a, {"general": {"locale": "fr-FR"}})
    assert second["overrides"] == {"general": {"timezone": "Europe/Paris", "locale": "fr-FR"}}

    third = await patch_own(client, tenant_a, {"general": {"timezone": None}})
    assert third["revision"] == 3
    assert third["overrides"] == {"general": {"locale": "fr-FR"}}
    assert third["effective"]["general"]["timezone"] == "UTC"
    assert (await client.get("/v1/config", headers=tenant_a.headers)).json() == third

    updates = [
        e
        for e in await audit_entries(client, admin_headers, tenant_a.slug)
        if e["action"] == "config.update"
    ]
    assert len(updates) == 3
    newest = updates[0]
    assert newest["actor"] == f"key:{tenant_a.context.key_id}"
    assert newest["old_value"] == {"general": {"timezone": "Europe/Paris", "locale": "fr-FR"}}
    assert newest["new_value"] == {"general": {"locale": "fr-FR"}}
    assert updates[-1]["old_value"] == {}


@pytest.mark.parametrize(
    ("patch", "paths"),
    [
        ({"general": {"timezone": "Mars/Olympus_Mons"}}, ("general.timezone",)),
        ({"general": {"timezone": 5}}, ("general.timezone",)),
        ({"general": {"locale": "EN_us!"}}, ("general.locale",)),
        ({"general": {"colour": "blue"}}, ("general.colour",)),
        ({"general": "UTC"}, ("general",)),
        ({"security": {"ip_allowlist": ["not-a-network"]}}, ("security.ip_allowlist.0",)),
        (
            {"security": {"ip_allowlist": ["10.0.0.0/8", "10.0.0.1/8"]}},
            ("security.ip_allowlist.1",),
        ),
        ({"security": {"ip_allowlist": "10.0.0.0/8"}}, ("security.ip_allowlist",)),
        (
            {"general": {"timezone": "Nowhere", "locale": "??"}},
            ("general.timezone", "general.locale"),
        ),
    ],
)
async def test_invalid_patch_is_422_naming_the_path_and_writes_nothing(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    patch: dict[str, Any],
    paths: tuple[str, ...],
) -> None:
    await patch_own(client, tenant_a, {"general": {"timezone": "Asia/Tokyo"}})
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.patch("/v1/config", json=patch, headers=tenant_a.headers)
    assert_problem(response, 422, "validation_error", paths=paths)
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
    assert before.config["revision"] == 1


async def test_unknown_section_is_invalid_config_not_forbidden(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.patch(
        "/v1/config", json={"nonsense": {"a": 1}}, headers=tenant_a.headers
    )
    assert_problem(response, 422, "validation_error", paths=("nonsense",))
    as_operator = await client.patch(
        f"/admin/tenants/{tenant_a.slug}/config",
        json={"nonsense": {"a": 1}},
        headers=admin_headers,
    )
    assert_problem(as_operator, 422, "validation_error", paths=("nonsense",))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


@pytest.mark.parametrize(
    ("patch", "paths"),
    [
        ({"keys": {"max_active_keys": 1000}}, ("keys.max_active_keys",)),
        ({"keys": None}, ("keys",)),
        (
            {"keys": {"allowed_scopes": ["llm"], "max_lifetime_days": 1}},
            ("keys.allowed_scopes", "keys.max_lifetime_days"),
        ),
        (
            {"general": {"timezone": "Europe/Berlin"}, "keys": {"max_active_keys": 99}},
            ("keys.max_active_keys",),
        ),
    ],
)
async def test_tenant_cannot_change_operator_sections(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    patch: dict[str, Any],
    paths: tuple[str, ...],
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.patch("/v1/config", json=patch, headers=tenant_a.headers)
    body = assert_problem(response, 403, "forbidden", paths=paths)
    assert not any(e["path"].startswith("general") for e in body["errors"])
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_operator_changes_operator_sections_and_is_audited(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    response = await client.patch(
        f"/admin/tenants/{tenant_a.slug}/config",
        json={"keys": {"max_active_keys": 5}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["overrides"] == {"keys": {"max_active_keys": 5}}
    assert view["effective"]["keys"]["max_active_keys"] == 5
    assert view["revision"] == 1

    own = await client.get("/v1/config", headers=tenant_a.headers)
    assert own.json()["effective"]["keys"]["max_active_keys"] == 5
    tenant_view = await client.get("/v1/audit", headers=tenant_a.headers)
    operator_view = await client.get(f"/admin/tenants/{tenant_a.slug}/audit", headers=admin_headers)
    assert tenant_view.status_code == operator_view.status_code == 200
    for entries in (tenant_view.json(), operator_view.json()):
        update = next(e for e in entries if e["action"] == "config.update")
        assert update["actor"] == "operator:admin"
        assert update["old_value"] == {}
        assert update["new_value"] == {"keys": {"max_active_keys": 5}}


async def test_operator_patch_is_validated_too(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    for patch, path in [
        ({"keys": {"max_active_keys": 0}}, "keys.max_active_keys"),
        ({"keys": {"allowed_scopes": ["root"]}}, "keys.allowed_scopes.0"),
        ({"keys": {"max_lifetime_days": 4000}}, "keys.max_lifetime_days"),
    ]:
        response = await client.patch(
            f"/admin/tenants/{tenant_a.slug}/config", json=patch, headers=admin_headers
        )
        assert_problem(response, 422, "validation_error", paths=(path,))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_admin_config_routes_on_unknown_tenant_are_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for method, suffix, body in [
        ("get", "config", None),
        ("patch", "config", {}),
        ("get", "audit", None),
    ]:
        response = await client.request(
            method, f"/admin/tenants/no-such-tenant-zz/{suffix}", json=body, headers=admin_headers
        )
        assert_problem(response, 404, "not_found")


async def test_ip_allowlist_excluding_the_caller_blocks_keys_until_the_operator_lifts_it(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    allowed = await patch_own(client, tenant_a, {"security": {"ip_allowlist": ["127.0.0.0/8"]}})
    assert allowed["effective"]["security"]["ip_allowlist"] == ["127.0.0.0/8"]
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200

    await patch_own(client, tenant_a, {"security": {"ip_allowlist": ["10.0.0.0/8", "::1/128"]}})
    for url in ("/v1/tenant", "/v1/config", "/v1/keys"):
        assert_problem(await client.get(url, headers=tenant_a.headers), 403, "forbidden")
    refused = await client.patch(
        "/v1/config", json={"security": {"ip_allowlist": None}}, headers=tenant_a.headers
    )
    assert_problem(refused, 403, "forbidden")

    lifted = await client.patch(
        f"/admin/tenants/{tenant_a.slug}/config",
        json={"security": {"ip_allowlist": None}},
        headers=admin_headers,
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["effective"]["security"]["ip_allowlist"] == []
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200


async def test_audit_paging(client: httpx.AsyncClient, tenant_a: TenantFixture) -> None:
    for zone in ("Europe/Rome", "Europe/Oslo", "Europe/Lisbon"):
        await patch_own(client, tenant_a, {"general": {"timezone": zone}})
    full = (await client.get("/v1/audit", headers=tenant_a.headers)).json()
    ids = [e["entry_id"] for e in full]
    assert ids == sorted(ids, reverse=True)
    newest = await client.get("/v1/audit", params={"limit": 1}, headers=tenant_a.headers)
    assert [e["entry_id"] for e in newest.json()] == ids[:1]
    older = await client.get(
        "/v1/audit", params={"before": ids[0], "limit": 2}, headers=tenant_a.headers
    )
    assert [e["entry_id"] for e in older.json()] == ids[1:3]


@pytest.mark.parametrize("limit", ["0", "-1", "1001", str(10**30), "ten", "1.5"])
async def test_audit_limit_out_of_range_is_422(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str], limit: str
) -> None:
    for url, headers in (
        ("/v1/audit", tenant_a.headers),
        (f"/admin/tenants/{tenant_a.slug}/audit", admin_headers),
    ):
        response = await client.get(url, params={"limit": limit}, headers=headers)
        assert_problem(response, 422, "validation_error", paths=("query.limit",))
