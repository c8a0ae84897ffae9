"""API keys over HTTP: shown once, scopes, expiry, revocation, tier limits."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest

from tests.api.support import (
    admin_key,
    assert_problem,
    audit_entries,
    bearer,
    create_tenant,
    own_key,
    snapshot,
)
from tests.conftest import TenantFixture

ALL_SCOPES = ["llm", "kb:read", "kb:write", "prompts", "agents", "usage:read", "tenant:admin"]


async def test_created_key_shows_its_secret_once(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    created = await own_key(client, tenant_a.headers, ("llm", "kb:read"))
    key, secret = created["key"], created["secret"]
    assert re.fullmatch(rf"dp_{tenant_a.slug}_[a-z0-9]{{10}}_[A-Za-z0-9]{{40}}", secret)
    assert key["prefix"] == f"dp_{tenant_a.slug}_{key['key_id']}"
    assert secret.startswith(key["prefix"] + "_")
    assert sorted(key["scopes"]) == ["kb:read", "llm"]
    assert key["tenant_id"] == tenant_a.slug
    assert key["created_by"] == f"key:{tenant_a.context.key_id}"
    assert key["expires_at"] is None
    assert key["revoked_at"] is None

    listed = await client.get("/v1/keys", headers=tenant_a.headers)
    shown = await client.get(f"/v1/keys/{key['key_id']}", headers=tenant_a.headers)
    for response in (listed, shown):
        assert response.status_code == 200
        assert secret.rsplit("_", 1)[1] not in response.text
        assert tenant_a.key.rsplit("_", 1)[1] not in response.text
        assert "secret" not in response.text
    assert shown.json() == key
    assert key in listed.json()


async def test_secrets_are_distinct(client: httpx.AsyncClient, tenant_a: TenantFixture) -> None:
    secrets = {(await own_key(client, tenant_a.headers, ("llm",)))["secret"] for _ in range(3)}
    assert len(secrets) == 3
    tails = {s.rsplit("_", 1)[1] for s in secrets}
    assert len(tails) == 3


async def test_new_key_authenticates_with_its_scopes(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    created = await own_key(client, tenant_a.headers, ("usage:read",))
    headers = bearer(created["secret"])
    assert (await client.get("/v1/tenant", headers=headers)).json()["tenant_id"] == tenant_a.slug
    assert_problem(await client.get("/v1/keys", headers=headers), 403, "missing_scope")


async def test_key_without_admin_scope_cannot_mint_keys(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    """A key cannot grant what it lacks: without tenant:admin it cannot create keys at all."""
    weak = await admin_key(client, admin_headers, tenant_a.slug, ("llm", "kb:read"))
    before = await snapshot(client, admin_headers, tenant_a.slug)
    for scopes in (["tenant:admin"], ["llm"], ["agents"]):
        response = await client.post(
            "/v1/keys", json={"name": "escalate", "scopes": scopes}, headers=bearer(weak["secret"])
        )
        assert_problem(response, 403, "missing_scope")
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "k", "scopes": ["root"]}, "scopes.0"),
        ({"name": "k", "scopes": ["llm", "LLM"]}, "scopes.1"),
        ({"name": "k", "scopes": []}, "scopes"),
        ({"name": "k"}, "scopes"),
        ({"scopes": ["llm"]}, "name"),
        ({"name": "", "scopes": ["llm"]}, "name"),
        ({"name": "n" * 201, "scopes": ["llm"]}, "name"),
        ({"name": "k", "scopes": ["llm"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "k", "scopes": ["llm"], "expires_in_days": -1}, "expires_in_days"),
        ({"name": "k", "scopes": ["llm"], "expires_in_days": 3651}, "expires_in_days"),
    ],
)
async def test_invalid_key_requests_are_422_and_write_nothing(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    body: dict[str, object],
    path: str,
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.post("/v1/keys", json=body, headers=tenant_a.headers)
    assert_problem(response, 422, "validation_error", paths=(path,))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_every_documented_scope_can_be_granted(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    created = await own_key(client, tenant_a.headers, tuple(ALL_SCOPES))
    assert sorted(created["key"]["scopes"]) == sorted(ALL_SCOPES)


async def test_optional_expiry(client: httpx.AsyncClient, tenant_a: TenantFixture) -> None:
    key = (await own_key(client, tenant_a.headers, ("llm",), expires_in_days=7))["key"]
    created = datetime.fromisoformat(key["created_at"])
    expires = datetime.fromisoformat(key["expires_at"])
    assert expires - created == timedelta(days=7)


async def test_revoke_is_final_and_idempotent(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    created = await own_key(client, tenant_a.headers, ("llm",))
    key_id = created["key"]["key_id"]
    revoked = await client.delete(f"/v1/keys/{key_id}", headers=tenant_a.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert "secret" not in revoked.text
    assert_problem(
        await client.get("/v1/tenant", headers=bearer(created["secret"])), 401, "unauthenticated"
    )
    again = await client.delete(f"/v1/keys/{key_id}", headers=tenant_a.headers)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    active = (await client.get("/v1/keys", headers=tenant_a.headers)).json()
    assert key_id not in {k["key_id"] for k in active}
    everything = await client.get(
        "/v1/keys", params={"include_revoked": "true"}, headers=tenant_a.headers
    )
    assert key_id in {k["key_id"] for k in everything.json()}
    shown = await client.get(f"/v1/keys/{key_id}", headers=tenant_a.headers)
    assert shown.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_key_changes_are_audited(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    created = await own_key(client, tenant_a.headers, ("llm",), expires_in_days=3)
    key_id = created["key"]["key_id"]
    await client.delete(f"/v1/keys/{key_id}", headers=tenant_a.headers)
    entries = [
        e
        for e in await audit_entries(client, admin_headers, tenant_a.slug)
        if e["target"] == key_id
    ]
    assert [e["action"] for e in entries] == ["key.revoke", "key.create"]
    create = entries[1]
    assert create["actor"] == f"key:{tenant_a.context.key_id}"
    assert create["new_value"]["scopes"] == ["llm"]
    assert create["new_value"]["expires_at"] is not None
    assert created["secret"].rsplit("_", 1)[1] not in str(entries)


async def test_unknown_key_ids_are_404(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    for method in ("get", "delete"):
        response = await client.request(method, "/v1/keys/zzzzzzzzzz", headers=tenant_a.headers)
        assert_problem(response, 404, "not_found")
    response = await client.delete(
        f"/admin/tenants/{tenant_a.slug}/keys/zzzzzzzzzz", headers=admin_headers
    )
    assert_problem(response, 404, "not_found")
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_another_tenants_key_id_is_404_and_stays_active(
    client: httpx.AsyncClient, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    victim = await own_key(client, tenant_a.headers, ("llm",))
    key_id = victim["key"]["key_id"]
    for method in ("get", "delete"):
        response = await client.request(method, f"/v1/keys/{key_id}", headers=tenant_b.headers)
        assert_problem(response, 404, "not_found")
    assert (await client.get("/v1/tenant", headers=bearer(victim["secret"]))).status_code == 200


# ---- limits --------------------------------------------------------------------------------


async def test_free_tier_allows_three_active_keys(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = await create_tenant(client, admin_headers, "limit", tier="free")
    admin = await admin_key(client, admin_headers, slug)
    headers = bearer(admin["secret"])
    second = await own_key(client, headers, ("llm",))
    await own_key(client, headers, ("kb:read",))
    before = await snapshot(client, admin_headers, slug)
    for url, hdrs in (("/v1/keys", headers), (f"/admin/tenants/{slug}/keys", admin_headers)):
        response = await client.post(url, json={"name": "4th", "scopes": ["llm"]}, headers=hdrs)
        body = assert_problem(response, 409, "limit_reached")
        assert "3 active keys" in body["detail"]
    after = await snapshot(client, admin_headers, slug)
    assert after == before
    assert len(after.keys) == 3

    await client.delete(f"/v1/keys/{second['key']['key_id']}", headers=headers)
    replacement = await own_key(client, headers, ("llm",))
    assert replacement["key"]["key_id"] != second["key"]["key_id"]


async def test_operator_sets_key_lifetime_limit(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    patched = await client.patch(
        f"/admin/tenants/{tenant_a.slug}/config",
        json={"keys": {"max_lifetime_days": 30}},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    before = await snapshot(client, admin_headers, tenant_a.slug)
    for extra in ({}, {"expires_in_days": 31}, {"expires_in_days": 3650}):
        response = await client.post(
            "/v1/keys", json={"name": "long", "scopes": ["llm"], **extra}, headers=tenant_a.headers
        )
        assert_problem(response, 422, "validation_error", paths=("expires_in_days",))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
    ok = await own_key(client, tenant_a.headers, ("llm",), expires_in_days=30)
    assert ok["key"]["expires_at"] is not None


async def test_operator_restricts_allowed_scopes(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    patched = await client.patch(
        f"/admin/tenants/{tenant_a.slug}/config",
        json={"keys": {"allowed_scopes": ["llm", "tenant:admin"]}},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.post(
        "/v1/keys", json={"name": "kb", "scopes": ["llm", "kb:write"]}, headers=tenant_a.headers
    )
    assert_problem(response, 422, "validation_error", paths=("scopes",))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
    assert (await own_key(client, tenant_a.headers, ("llm",)))["key"]["scopes"] == ["llm"]


async def test_operator_key_routes(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    created = await admin_key(client, admin_headers, tenant_a.slug, ("prompts",))
    key_id = created["key"]["key_id"]
    assert created["key"]["created_by"] == "operator:admin"
    listed = await client.get(f"/admin/tenants/{tenant_a.slug}/keys", headers=admin_headers)
    assert key_id in {k["key_id"] for k in listed.json()}
    assert created["secret"].rsplit("_", 1)[1] not in listed.text
    revoked = await client.delete(
        f"/admin/tenants/{tenant_a.slug}/keys/{key_id}", headers=admin_headers
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_problem(
        await client.get("/v1/tenant", headers=bearer(created["secret"])), 401, "unauthenticated"
    )
