"""One error shape for every error, request ids, and malformed input that must never be a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import (
    GENERATED_REQUEST_ID,
    assert_problem,
    snapshot,
)
from tests.conftest import TenantFixture, unique_slug


async def test_every_kind_of_error_has_the_problem_shape(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    cases: list[tuple[httpx.Response, int, str]] = [
        (await client.get("/v1/tenant"), 401, "unauthenticated"),
        (await client.get("/admin/tiers", headers=tenant_a.headers), 403, "forbidden"),
        (await client.get("/v1/no-such-route", headers=tenant_a.headers), 404, "not_found"),
        (
            await client.get(f"/admin/tenants/{unique_slug('nobody')}", headers=admin_headers),
            404,
            "not_found",
        ),
        (
            await client.put("/v1/config", json={}, headers=tenant_a.headers),
            405,
            "method_not_allowed",
        ),
        (
            await client.post(
                "/admin/tenants",
                json={"tenant_id": tenant_a.slug, "display_name": "again"},
                headers=admin_headers,
            ),
            409,
            "conflict",
        ),
        (
            await client.post("/admin/tenants", json={}, headers=admin_headers),
            422,
            "validation_error",
        ),
    ]
    for response, status, type_ in cases:
        assert_problem(response, status, type_)


async def test_unauthenticated_response_asks_for_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/keys")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_field_errors_carry_path_and_message(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post("/admin/tenants", json={"tenant_id": "x"}, headers=admin_headers)
    assert_problem(response, 422, "validation_error", paths=("tenant_id", "display_name"))


@pytest.mark.parametrize("request_id", ["req-123", "a" * 128, "trace:01.AB_cd-9"])
async def test_well_formed_request_id_is_echoed_on_success_and_error(
    client: httpx.AsyncClient, request_id: str
) -> None:
    ok = await client.get("/healthz", headers={"X-Request-ID": request_id})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == request_id
    refused = await client.get("/v1/tenant", headers={"X-Request-ID": request_id})
    body = assert_problem(refused, 401, "unauthenticated")
    assert body["request_id"] == request_id


@pytest.mark.parametrize("request_id", ["has space", "a" * 129, "semi;colon", "slash/inside"])
async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient, request_id: str) -> None:
    response = await client.get("/v1/tenant", headers={"X-Request-ID": request_id})
    body = assert_problem(response, 401, "unauthenticated")
    assert body["request_id"] != request_id
    assert GENERATED_REQUEST_ID.fullmatch(body["request_id"])


async def test_generated_request_ids_differ_per_request(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_success_responses_carry_a_request_id(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    for response in (
        await client.get("/v1/tenant", headers=tenant_a.headers),
        await client.get("/v1/keys", headers=tenant_a.headers),
        await client.get("/admin/tiers", headers=admin_headers),
    ):
        assert response.status_code == 200
        assert GENERATED_REQUEST_ID.fullmatch(response.headers["x-request-id"])


# ---- malformed bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"{bad", b'{"general": ', b"\xff\xfe not utf-8", b'{"a": 1}}', b"nul\x00"]
)
async def test_malformed_json_is_a_client_error_and_writes_nothing(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str], raw: bytes
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.patch(
        "/v1/config",
        content=raw,
        headers={**tenant_a.headers, "content-type": "application/json"},
    )
    assert_problem(response, 400, "malformed_json")
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_deeply_nested_json_is_a_client_error(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    raw = b"[" * 5000 + b"]" * 5000
    response = await client.patch(
        "/v1/config",
        content=raw,
        headers={**tenant_a.headers, "content-type": "application/json"},
    )
    assert_problem(response, 400, "bad_request")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([{"general": {}}], "body"),
        ("general", "body"),
        (42, "body"),
    ],
)
async def test_config_patch_must_be_an_object(
    client: httpx.AsyncClient, tenant_a: TenantFixture, body: Any, path: str
) -> None:
    response = await client.patch("/v1/config", json=body, headers=tenant_a.headers)
    assert_problem(response, 422, "validation_error", paths=(path,))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": 5, "scopes": ["llm"]}, "name"),
        ({"name": "k", "scopes": "llm"}, "scopes"),
        ({"name": "k", "scopes": [["llm"]]}, "scopes.0"),
        ({"name": "k", "scopes": ["llm"], "expires_in_days": "ten"}, "expires_in_days"),
        ({"name": "k", "scopes": ["llm"], "expires_in_days": 1.5}, "expires_in_days"),
        ({"name": "k", "scopes": ["llm"], "expires_in_days": 10**40}, "expires_in_days"),
        ({"name": ["k"], "scopes": {"llm": True}}, "scopes"),
    ],
)
async def test_wrong_json_types_name_the_field(
    client: httpx.AsyncClient, tenant_a: TenantFixture, body: dict[str, Any], path: str
) -> None:
    response = await client.post("/v1/keys", json=body, headers=tenant_a.headers)
    assert_problem(response, 422, "validation_error", paths=(path,))
    keys = (await client.get("/v1/keys", headers=tenant_a.headers)).json()
    assert [k["name"] for k in keys] == ["fixture"]


async def test_non_json_content_type_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = unique_slug("ctype")
    response = await client.post(
        "/admin/tenants",
        content=f'{{"tenant_id": "{slug}", "display_name": "x"}}'.encode(),
        headers={**admin_headers, "content-type": "text/plain"},
    )
    assert_problem(response, 422, "validation_error")
    assert (await client.get(f"/admin/tenants/{slug}", headers=admin_headers)).status_code == 404


async def test_unknown_fields_are_refused_in_every_body(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    slug = tenant_a.slug
    tier = unique_slug("xtier")
    created = await client.post(
        "/admin/tiers", json={"name": tier, "display_name": "X"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    new_slug = unique_slug("extra")
    cases = [
        (
            "post",
            "/admin/tenants",
            {"tenant_id": new_slug, "display_name": "x", "owner": "eve"},
            "owner",
        ),
        ("patch", f"/admin/tenants/{slug}", {"status": "deleted"}, "status"),
        ("post", f"/admin/tenants/{slug}/suspend", {"reason": "r", "until": "never"}, "until"),
        (
            "post",
            "/admin/tiers",
            {"name": unique_slug("xtier"), "display_name": "X", "price": 1},
            "price",
        ),
        ("patch", f"/admin/tiers/{tier}", {"display_name": "Y", "hidden": True}, "hidden"),
        ("post", "/v1/keys", {"name": "k", "scopes": ["llm"], "admin": True}, "admin"),
        (
            "post",
            f"/admin/tenants/{slug}/keys",
            {"name": "k", "scopes": ["llm"], "secret": "mine"},
            "secret",
        ),
    ]
    before = await snapshot(client, admin_headers, slug)
    for method, url, body, field in cases:
        headers = tenant_a.headers if url.startswith("/v1") else admin_headers
        response = await client.request(method, url, json=body, headers=headers)
        assert_problem(response, 422, "validation_error", paths=(field,))
    assert await snapshot(client, admin_headers, slug) == before
    missing = await client.get(f"/admin/tenants/{new_slug}", headers=admin_headers)
    assert_problem(missing, 404, "not_found")
    assert (await client.get(f"/admin/tiers/{tier}", headers=admin_headers)).json()[
        "display_name"
    ] == "X"


# ---- input PostgreSQL cannot store (NUL) and odd path parameters ---------------------------


@pytest.mark.parametrize("tenant_id", ["Not_A_Slug", "a" * 300, "%E2%98%83", "a%00b", "a%20b"])
async def test_tenant_path_params_that_are_not_slugs(
    client: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: str
) -> None:
    for method, suffix in [
        ("get", ""),
        ("get", "/keys"),
        ("get", "/config"),
        ("get", "/audit"),
        ("post", "/resume"),
    ]:
        response = await client.request(
            method, f"/admin/tenants/{tenant_id}{suffix}", headers=admin_headers
        )
        assert response.status_code in (404, 422), (suffix, response.status_code, response.text)
        assert_problem(
            response,
            response.status_code,
            "not_found" if response.status_code == 404 else "validation_error",
        )


@pytest.mark.parametrize("key_id", ["NOT-A-KEY", "a%00b", "k" * 500])
async def test_key_path_params_that_are_not_key_ids(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str], key_id: str
) -> None:
    for method, url, headers in [
        ("get", f"/v1/keys/{key_id}", tenant_a.headers),
        ("delete", f"/v1/keys/{key_id}", tenant_a.headers),
        ("delete", f"/admin/tenants/{tenant_a.slug}/keys/{key_id}", admin_headers),
    ]:
        response = await client.request(method, url, headers=headers)
        assert response.status_code in (404, 422), (url, response.text)
        assert_problem(
            response,
            response.status_code,
            "not_found" if response.status_code == 404 else "validation_error",
        )


@pytest.mark.parametrize("name", ["Bad_Tier", "a%00b", "t" * 300])
async def test_tier_path_params_that_are_not_slugs(
    client: httpx.AsyncClient, admin_headers: dict[str, str], name: str
) -> None:
    for method, body in [("get", None), ("patch", {"display_name": "x"}), ("delete", None)]:
        response = await client.request(
            method, f"/admin/tiers/{name}", json=body, headers=admin_headers
        )
        assert response.status_code in (404, 422), (method, response.text)
        assert_problem(
            response,
            response.status_code,
            "not_found" if response.status_code == 404 else "validation_error",
        )


@pytest.mark.parametrize(
    ("route", "param"),
    [
        ("/admin/tenants", "after"),
        ("/v1/audit", "before"),
        ("/admin/tenants/{slug}/audit", "before"),
        ("/admin/audit", "before"),
    ],
)
async def test_nul_in_cursor_query_params_is_refused(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    route: str,
    param: str,
) -> None:
    headers = tenant_a.headers if route.startswith("/v1") else admin_headers
    response = await client.get(
        route.format(slug=tenant_a.slug), params={param: "a\x00b"}, headers=headers
    )
    assert_problem(response, 422, "validation_error", paths=(f"query.{param}",))


NUL_BODIES = [
    ("post", "/admin/tenants", {"tenant_id": "{new}", "display_name": "a\x00b"}, "display_name"),
    ("patch", "/admin/tenants/{slug}", {"display_name": "a\x00b"}, "display_name"),
    ("post", "/admin/tenants/{slug}/suspend", {"reason": "a\x00b"}, "reason"),
    ("post", "/admin/tenants/{slug}/keys", {"name": "a\x00b", "scopes": ["llm"]}, "name"),
    ("post", "/v1/keys", {"name": "a\x00b", "scopes": ["llm"]}, "name"),
    ("post", "/admin/tiers", {"name": "{new}", "display_name": "a\x00b"}, "display_name"),
    (
        "post",
        "/admin/tiers",
        {"name": "{new}", "display_name": "T", "description": "a\x00b"},
        "description",
    ),
    ("patch", "/admin/tiers/{tier}", {"description": "a\x00b"}, "description"),
]


@pytest.mark.parametrize(("method", "route", "body", "field"), NUL_BODIES)
async def test_nul_in_body_strings_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    admin_headers: dict[str, str],
    method: str,
    route: str,
    body: dict[str, Any],
    field: str,
) -> None:
    new = unique_slug("nul")
    body = {k: (new if v == "{new}" else v) for k, v in body.items()}
    headers = tenant_a.headers if route.startswith("/v1") else admin_headers
    tier = unique_slug("nultier")
    made = await client.post(
        "/admin/tiers", json={"name": tier, "display_name": "T"}, headers=admin_headers
    )
    assert made.status_code == 201, made.text
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.request(
        method, route.format(slug=tenant_a.slug, tier=tier), json=body, headers=headers
    )
    assert_problem(response, 422, "validation_error", paths=(field,))
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
    assert (await client.get(f"/admin/tiers/{tier}", headers=admin_headers)).json() == made.json()
    for leftover in (f"/admin/tenants/{new}", f"/admin/tiers/{new}"):
        assert_problem(await client.get(leftover, headers=admin_headers), 404, "not_found")
