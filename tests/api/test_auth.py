"""Credentials: unknown, wrong, revoked, expired and mis-scoped keys; operator vs tenant."""

from __future__ import annotations

import secrets
import string

import httpx
import pytest

from deskpilot.platform import Platform
from tests.api.support import admin_key, assert_problem, bearer, create_tenant, expire_key
from tests.conftest import ADMIN_TOKEN, TenantFixture

ALNUM = string.ascii_letters + string.digits


def random_secret() -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(40))


def with_secret(key: str, secret: str) -> str:
    return key.rsplit("_", 1)[0] + "_" + secret


@pytest.mark.parametrize(
    "authorization",
    [
        "Garbage abc",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer",
        "Bearer    ",
        "bearer-token dp_x",
        "Token dp_acme_k3v9q2m4xa_" + "a" * 40,
        "Bearer not-a-key",
        "Bearer dp_",
        "Bearer dp_acme_short_secret",
        "Bearer dp_Acme_k3v9q2m4xa_" + "a" * 40,
        "Bearer dp_acme_k3v9q2m4xa_" + "a" * 39 + "!",
    ],
)
async def test_garbage_credentials_are_401(client: httpx.AsyncClient, authorization: str) -> None:
    response = await client.get("/v1/tenant", headers={"Authorization": authorization})
    assert_problem(response, 401, "unauthenticated")


async def test_no_credential_is_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/config"), 401, "unauthenticated")


async def test_unknown_key_of_the_right_shape_is_401(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    unknown = f"dp_{tenant_a.slug}_zzzzzzzzzz_{random_secret()}"
    assert_problem(await client.get("/v1/tenant", headers=bearer(unknown)), 401, "unauthenticated")


async def test_wrong_secret_for_an_existing_key_is_401(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    forged = with_secret(tenant_a.key, random_secret())
    response = await client.get("/v1/tenant", headers=bearer(forged))
    assert_problem(response, 401, "unauthenticated")
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200


async def test_key_with_another_tenants_slug_substituted_is_401(
    client: httpx.AsyncClient, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    _, _, key_id, secret = tenant_a.key.split("_")
    swapped = f"dp_{tenant_b.slug}_{key_id}_{secret}"
    response = await client.get("/v1/tenant", headers=bearer(swapped))
    assert_problem(response, 401, "unauthenticated")
    own = await client.get("/v1/tenant", headers=tenant_b.headers)
    assert own.json()["tenant_id"] == tenant_b.slug


async def test_key_works_in_x_api_key_header(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    response = await client.get("/v1/tenant", headers={"X-API-Key": tenant_a.key})
    assert response.status_code == 200, response.text
    assert response.json()["tenant_id"] == tenant_a.slug


async def test_revoked_key_is_401(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    created = await admin_key(client, admin_headers, tenant_a.slug, ("llm",))
    headers = bearer(created["secret"])
    assert (await client.get("/v1/tenant", headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/keys/{created['key']['key_id']}", headers=tenant_a.headers)
    assert revoked.status_code == 200, revoked.text
    body = assert_problem(await client.get("/v1/tenant", headers=headers), 401, "unauthenticated")
    assert "revoked" in body["detail"]


async def test_expired_key_is_401(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    platform: Platform,
) -> None:
    created = await admin_key(client, admin_headers, tenant_a.slug, ("llm",), expires_in_days=1)
    headers = bearer(created["secret"])
    assert (await client.get("/v1/tenant", headers=headers)).status_code == 200
    await expire_key(platform, tenant_a.slug, created["key"]["key_id"])
    body = assert_problem(await client.get("/v1/tenant", headers=headers), 401, "unauthenticated")
    assert "expired" in body["detail"]
    assert (await client.get("/v1/tenant", headers=tenant_a.headers)).status_code == 200


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/v1/keys"),
        ("post", "/v1/keys"),
        ("get", "/v1/keys/abcdefghij"),
        ("delete", "/v1/keys/abcdefghij"),
        ("get", "/v1/config"),
        ("patch", "/v1/config"),
        ("get", "/v1/audit"),
    ],
)
async def test_key_without_tenant_admin_scope_is_403(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    method: str,
    url: str,
) -> None:
    created = await admin_key(
        client, admin_headers, tenant_a.slug, ("llm", "kb:read", "kb:write", "usage:read")
    )
    body = {"name": "x", "scopes": ["llm"]} if url == "/v1/keys" and method == "post" else {}
    response = await client.request(
        method,
        url,
        json=body if method in {"post", "patch"} else None,
        headers=bearer(created["secret"]),
    )
    problem = assert_problem(response, 403, "missing_scope")
    assert "tenant:admin" in problem["detail"]


async def test_scoped_key_reaches_routes_that_need_no_scope(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    created = await admin_key(client, admin_headers, tenant_a.slug, ("kb:read",))
    response = await client.get("/v1/tenant", headers=bearer(created["secret"]))
    assert response.status_code == 200
    assert response.json()["tenant_id"] == tenant_a.slug


# ---- operator and tenant credentials never stand in for each other -------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/v1/tenant"),
        ("get", "/v1/keys"),
        ("post", "/v1/keys"),
        ("get", "/v1/config"),
        ("patch", "/v1/config"),
        ("get", "/v1/audit"),
    ],
)
@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
async def test_operator_token_on_tenant_routes_is_401(
    client: httpx.AsyncClient, method: str, url: str, header: str
) -> None:
    value = f"Bearer {ADMIN_TOKEN}" if header == "Authorization" else ADMIN_TOKEN
    body = {"name": "x", "scopes": ["llm"]} if method == "post" else {}
    response = await client.request(
        method, url, json=body if method != "get" else None, headers={header: value}
    )
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/tiers"),
        ("get", "/admin/tenants"),
        ("get", "/admin/tenants/{slug}"),
        ("get", "/admin/tenants/{slug}/keys"),
        ("patch", "/admin/tenants/{slug}/config"),
        ("post", "/admin/tenants/{slug}/resume"),
        ("delete", "/admin/tenants/{slug}"),
    ],
)
async def test_tenant_admin_key_on_admin_routes_is_403(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    url = path.format(slug=tenant_a.slug)
    for headers in (tenant_a.headers, {"X-API-Key": tenant_a.key}):
        response = await client.request(
            method, url, json={} if method == "patch" else None, headers=headers
        )
        assert_problem(response, 403, "forbidden")
    still = await client.get(f"/admin/tenants/{tenant_a.slug}", headers=admin_headers)
    assert still.json()["status"] == "active"


@pytest.mark.parametrize(
    "token", ["dpo_" + "x" * 48, ADMIN_TOKEN[:-1], ADMIN_TOKEN + "t", "garbage"]
)
async def test_wrong_operator_token_is_401(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/admin/tiers", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "unauthenticated")


async def test_admin_routes_without_credential_are_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/admin/tenants"), 401, "unauthenticated")


async def test_key_of_a_free_tenant_created_over_http_works(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = await create_tenant(client, admin_headers, "authfree", tier="free")
    created = await admin_key(client, admin_headers, slug)
    response = await client.get("/v1/tenant", headers=bearer(created["secret"]))
    assert response.status_code == 200
    shown = await client.get(f"/admin/tenants/{slug}", headers=admin_headers)
    assert response.json() == shown.json()
