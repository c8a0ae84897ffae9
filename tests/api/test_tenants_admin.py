"""Operator tenant routes: create, list (filters, cursor), show, patch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import assert_problem, audit_entries, create_tenant, snapshot
from tests.conftest import TenantFixture, unique_slug


async def own_listing(
    client: httpx.AsyncClient, admin: dict[str, str], prefix: str, **params: Any
) -> list[dict[str, Any]]:
    """The listing windowed onto ``prefix`` (other tests create tenants concurrently)."""
    response = await client.get(
        "/admin/tenants", params={"after": prefix, "limit": 50, **params}, headers=admin
    )
    assert response.status_code == 200, response.text
    return [t for t in response.json() if t["tenant_id"].startswith(prefix + "-")]


async def test_create_show_and_list(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = unique_slug("create")
    response = await client.post(
        "/admin/tenants",
        json={"tenant_id": slug, "display_name": "Acme IT"},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["tenant_id"] == slug
    assert created["display_name"] == "Acme IT"
    assert created["tier"] == "free"
    assert created["status"] == "active"
    assert created["status_reason"] is None
    assert created["billing_anchor_day"] == 1

    shown = await client.get(f"/admin/tenants/{slug}", headers=admin_headers)
    assert shown.status_code == 200
    assert shown.json() == created
    listed = await client.get(
        "/admin/tenants", params={"after": slug[:-1], "limit": 5}, headers=admin_headers
    )
    assert created in listed.json()
    entries = await audit_entries(client, admin_headers, slug)
    assert [e["action"] for e in entries] == ["tenant.create"]
    assert entries[0]["actor"] == "operator:admin"
    assert entries[0]["new_value"]["tenant_id"] == slug


async def test_duplicate_slug_is_409_and_changes_nothing(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.post(
        "/admin/tenants",
        json={"tenant_id": tenant_a.slug, "display_name": "Impostor", "tier": "enterprise"},
        headers=admin_headers,
    )
    assert_problem(response, 409, "conflict")
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
    assert before.tenant["display_name"] == "alpha corp"


@pytest.mark.parametrize(
    "slug",
    [
        "ab",
        "Upper-case",
        "-leading",
        "trailing-",
        "double--hyphen",
        "1starts-digit",
        "a" * 41,
        "under_score",
        "has space",
        "dot.ted",
        "ünïcode",
        "",
        "x",
    ],
)
async def test_invalid_slug_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], slug: str
) -> None:
    response = await client.post(
        "/admin/tenants", json={"tenant_id": slug, "display_name": "x"}, headers=admin_headers
    )
    assert_problem(response, 422, "validation_error", paths=("tenant_id",))


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"tier": "no-such-tier"}, "tier"),
        ({"tier": 3}, "tier"),
        ({"billing_anchor_day": 29}, "billing_anchor_day"),
        ({"billing_anchor_day": 0}, "billing_anchor_day"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "d" * 201}, "display_name"),
        ({"display_name": None}, "display_name"),
    ],
)
async def test_refused_create_leaves_no_tenant(
    client: httpx.AsyncClient, admin_headers: dict[str, str], extra: dict[str, Any], path: str
) -> None:
    slug = unique_slug("refused")
    response = await client.post(
        "/admin/tenants",
        json={"tenant_id": slug, "display_name": "x", **extra},
        headers=admin_headers,
    )
    assert_problem(response, 422, "validation_error", paths=(path,))
    assert_problem(
        await client.get(f"/admin/tenants/{slug}", headers=admin_headers), 404, "not_found"
    )


async def test_list_filters_by_status_and_tier_and_pages_with_after(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    prefix = unique_slug("lst")
    specs = {"a": "free", "b": "enterprise", "c": "pro", "d": "enterprise"}
    for suffix, tier in specs.items():
        response = await client.post(
            "/admin/tenants",
            json={"tenant_id": f"{prefix}-{suffix}", "display_name": suffix, "tier": tier},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
    suspended = await client.post(
        f"/admin/tenants/{prefix}-c/suspend", json={"reason": "unpaid"}, headers=admin_headers
    )
    assert suspended.status_code == 200

    ids = [t["tenant_id"] for t in await own_listing(client, admin_headers, prefix)]
    assert ids == [f"{prefix}-{s}" for s in "abcd"]
    by_tier = await own_listing(client, admin_headers, prefix, tier="enterprise")
    assert [t["tenant_id"] for t in by_tier] == [f"{prefix}-b", f"{prefix}-d"]
    by_status = await own_listing(client, admin_headers, prefix, status="suspended")
    assert [(t["tenant_id"], t["status_reason"]) for t in by_status] == [(f"{prefix}-c", "unpaid")]
    active_ent = await own_listing(
        client, admin_headers, prefix, status="active", tier="enterprise"
    )
    assert len(active_ent) == 2

    seen, cursor = [], prefix
    for _ in range(4):
        page = await client.get(
            "/admin/tenants", params={"after": cursor, "limit": 1}, headers=admin_headers
        )
        assert page.status_code == 200
        (tenant,) = page.json()
        seen.append(tenant["tenant_id"])
        cursor = tenant["tenant_id"]
    assert seen == ids


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"status": "bogus"}, "query.status"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
        ({"limit": str(10**30)}, "query.limit"),
        ({"limit": "-5"}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
    ],
)
async def test_list_refuses_bad_query_params(
    client: httpx.AsyncClient, admin_headers: dict[str, str], params: dict[str, str], path: str
) -> None:
    response = await client.get("/admin/tenants", params=params, headers=admin_headers)
    assert_problem(response, 422, "validation_error", paths=(path,))


async def test_list_with_unknown_tier_is_empty(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/admin/tenants", params={"tier": unique_slug("ghost")}, headers=admin_headers
    )
    assert response.status_code == 200
    assert response.json() == []


async def test_patch_display_name_and_tier(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = await create_tenant(client, admin_headers, "patch", tier="pro")
    response = await client.patch(
        f"/admin/tenants/{slug}",
        json={"display_name": "Renamed", "tier": "free"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "Renamed"
    assert response.json()["tier"] == "free"
    assert (await client.get(f"/admin/tenants/{slug}", headers=admin_headers)).json() == (
        response.json()
    )
    config = (await client.get(f"/admin/tenants/{slug}/config", headers=admin_headers)).json()
    assert config["tier"] == "free"
    assert config["effective"]["keys"]["max_active_keys"] == 3
    update = (await audit_entries(client, admin_headers, slug))[0]
    assert update["action"] == "tenant.update"
    assert update["actor"] == "operator:admin"
    assert update["old_value"] == {"display_name": "patch corp", "tier": "pro"}
    assert update["new_value"] == {"display_name": "Renamed", "tier": "free"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"display_name": "Changed", "tier": "no-such-tier"}, "tier"),
        ({"display_name": ""}, "display_name"),
        ({"billing_anchor_day": 31}, "billing_anchor_day"),
        ({"tier": ["pro"]}, "tier"),
        ({"tenant_id": "renamed-id"}, "tenant_id"),
    ],
)
async def test_refused_patch_changes_nothing(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    body: dict[str, Any],
    path: str,
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.patch(
        f"/admin/tenants/{tenant_a.slug}", json=body, headers=admin_headers
    )
    assert_problem(response, 422, "validation_error", paths=(path,))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_unknown_tenant_is_404_on_every_admin_route(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ghost = unique_slug("ghost")
    cases = [
        ("get", "", None),
        ("patch", "", {"display_name": "x"}),
        ("delete", "", None),
        ("post", "/suspend", {"reason": "r"}),
        ("post", "/resume", None),
        ("get", "/keys", None),
        ("post", "/keys", {"name": "k", "scopes": ["llm"]}),
        ("delete", "/keys/abcdefghij", None),
        ("get", "/config", None),
        ("patch", "/config", {"general": {"timezone": "UTC"}}),
        ("get", "/audit", None),
    ]
    for method, suffix, body in cases:
        response = await client.request(
            method, f"/admin/tenants/{ghost}{suffix}", json=body, headers=admin_headers
        )
        problem = assert_problem(response, 404, "not_found")
        assert ghost in problem["detail"], (method, suffix)
    listed = await client.get(
        "/admin/tenants", params={"after": ghost[:-1], "limit": 5}, headers=admin_headers
    )
    assert ghost not in {t["tenant_id"] for t in listed.json()}
