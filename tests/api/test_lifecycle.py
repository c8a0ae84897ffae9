"""Suspend, resume and delete a tenant over HTTP, and what its keys see at each step."""

from __future__ import annotations

import httpx
import pytest

from tests.api.support import (
    admin_key,
    assert_problem,
    audit_entries,
    bearer,
    create_tenant,
    snapshot,
)
from tests.conftest import TenantFixture


async def test_suspend_blocks_keys_with_the_reason_and_resume_restores_them(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200
    reason = "invoice 2024-117 overdue"
    response = await client.post(
        f"/admin/tenants/{tenant_a.slug}/suspend", json={"reason": reason}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "suspended"
    assert response.json()["status_reason"] == reason

    for method, url in (
        ("get", "/v1/tenant"),
        ("get", "/v1/keys"),
        ("get", "/v1/config"),
        ("post", "/v1/keys"),
    ):
        refused = await client.request(
            method,
            url,
            json={"name": "k", "scopes": ["llm"]} if method == "post" else None,
            headers=tenant_a.headers,
        )
        body = assert_problem(refused, 403, "tenant_suspended")
        assert reason in body["detail"]

    shown = await client.get(f"/admin/tenants/{tenant_a.slug}", headers=admin_headers)
    assert shown.json()["status"] == "suspended"
    keys = await client.get(f"/admin/tenants/{tenant_a.slug}/keys", headers=admin_headers)
    assert [k["name"] for k in keys.json()] == ["fixture"]

    resumed = await client.post(f"/admin/tenants/{tenant_a.slug}/resume", headers=admin_headers)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    assert resumed.json()["status_reason"] is None
    ok = await client.get("/v1/tenant", headers=tenant_a.headers)
    assert ok.status_code == 200
    assert ok.json()["status"] == "active"

    actions = [e["action"] for e in await audit_entries(client, admin_headers, tenant_a.slug)]
    assert actions[:2] == ["tenant.active", "tenant.suspended"]
    suspend_entry = (await audit_entries(client, admin_headers, tenant_a.slug))[1]
    assert suspend_entry["actor"] == "operator:admin"
    assert suspend_entry["old_value"] == {"status": "active", "reason": None}
    assert suspend_entry["new_value"] == {"status": "suspended", "reason": reason}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "r" * 501}, "reason"),
        ({"reason": 42}, "reason"),
    ],
)
async def test_suspend_needs_a_reason(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    body: dict[str, object],
    path: str,
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.post(
        f"/admin/tenants/{tenant_a.slug}/suspend", json=body, headers=admin_headers
    )
    assert_problem(response, 422, "validation_error", paths=(path,))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200


async def test_suspend_without_body_is_422(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    response = await client.post(f"/admin/tenants/{tenant_a.slug}/suspend", headers=admin_headers)
    assert_problem(response, 422, "validation_error")
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200


async def test_operator_still_manages_a_suspended_tenant(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    await client.post(
        f"/admin/tenants/{tenant_a.slug}/suspend", json={"reason": "audit"}, headers=admin_headers
    )
    config = await client.get(f"/admin/tenants/{tenant_a.slug}/config", headers=admin_headers)
    assert config.status_code == 200
    created = await admin_key(client, admin_headers, tenant_a.slug, ("llm",))
    body = assert_problem(
        await client.get("/v1/tenant", headers=bearer(created["secret"])), 403, "tenant_suspended"
    )
    assert "audit" in body["detail"]


async def test_delete_purges_and_the_key_stops_working(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = await create_tenant(client, admin_headers, "doomed")
    created = await admin_key(client, admin_headers, slug)
    headers = bearer(created["secret"])
    patched = await client.patch(
        "/v1/config", json={"general": {"timezone": "Europe/Paris"}}, headers=headers
    )
    assert patched.status_code == 200

    response = await client.delete(f"/admin/tenants/{slug}", headers=admin_headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["tenant_id"] == slug
    assert isinstance(report["purge_steps"], int)
    rows = report["rows_deleted"]
    assert rows["tenants"] == 1
    assert rows["api_keys"] == 1
    assert rows["tenant_config"] == 1
    assert rows["audit_log"] >= 3

    body = assert_problem(await client.get("/v1/tenant", headers=headers), 401, "unauthenticated")
    assert "request_id" in body
    assert_problem(
        await client.get(f"/admin/tenants/{slug}", headers=admin_headers), 404, "not_found"
    )
    assert_problem(
        await client.delete(f"/admin/tenants/{slug}", headers=admin_headers), 404, "not_found"
    )
    assert_problem(
        await client.get(f"/admin/tenants/{slug}/keys", headers=admin_headers), 404, "not_found"
    )
    assert_problem(
        await client.post(f"/admin/tenants/{slug}/resume", headers=admin_headers), 404, "not_found"
    )
    listed = await client.get(
        "/admin/tenants", params={"after": slug[:-1], "limit": 5}, headers=admin_headers
    )
    assert slug not in {t["tenant_id"] for t in listed.json()}


async def test_deleting_one_tenant_leaves_another_untouched(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    admin_headers: dict[str, str],
) -> None:
    before = await snapshot(client, admin_headers, tenant_b.slug)
    response = await client.delete(f"/admin/tenants/{tenant_a.slug}", headers=admin_headers)
    assert response.status_code == 200
    assert await snapshot(client, admin_headers, tenant_b.slug) == before
    assert (await client.get("/v1/tenant", headers=tenant_b.headers)).status_code == 200
    assert_problem(await client.get("/v1/tenant", headers=tenant_a.headers), 401, "unauthenticated")
