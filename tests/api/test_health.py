"""Probes and the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.api.support import GENERATED_REQUEST_ID

TENANCY_ROUTES = {
    ("get", "/admin/tiers"),
    ("post", "/admin/tiers"),
    ("get", "/admin/tiers/{name}"),
    ("get", "/admin/audit"),
    ("patch", "/admin/tiers/{name}"),
    ("delete", "/admin/tiers/{name}"),
    ("post", "/admin/tenants"),
    ("get", "/admin/tenants"),
    ("get", "/admin/tenants/{tenant_id}"),
    ("patch", "/admin/tenants/{tenant_id}"),
    ("delete", "/admin/tenants/{tenant_id}"),
    ("post", "/admin/tenants/{tenant_id}/suspend"),
    ("post", "/admin/tenants/{tenant_id}/resume"),
    ("get", "/admin/tenants/{tenant_id}/keys"),
    ("post", "/admin/tenants/{tenant_id}/keys"),
    ("delete", "/admin/tenants/{tenant_id}/keys/{key_id}"),
    ("get", "/admin/tenants/{tenant_id}/config"),
    ("patch", "/admin/tenants/{tenant_id}/config"),
    ("get", "/admin/tenants/{tenant_id}/audit"),
    ("get", "/v1/tenant"),
    ("get", "/v1/config"),
    ("patch", "/v1/config"),
    ("get", "/v1/audit"),
    ("get", "/v1/keys"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys/{key_id}"),
    ("delete", "/v1/keys/{key_id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}


async def test_healthz_needs_no_credential(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert GENERATED_REQUEST_ID.fullmatch(response.headers["x-request-id"])


async def test_readyz_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert "x-request-id" in response.headers


async def test_openapi_lists_every_tenancy_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    listed = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "patch", "put", "delete"}
    }
    assert listed >= TENANCY_ROUTES, sorted(TENANCY_ROUTES - listed)
    assert "x-request-id" in response.headers


async def test_openapi_documents_no_secret_in_key_listings(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert "secret" in schemas["CreatedApiKey"]["properties"]
    assert "secret" not in schemas["ApiKey"]["properties"]
