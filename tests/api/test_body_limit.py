"""Oversized bodies: 413 by declared length and while streaming, with nothing written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from tests.api.conftest import SMALL_BODY_LIMIT
from tests.api.support import assert_problem, snapshot
from tests.conftest import TenantFixture, unique_slug


def tenant_body(slug: str, size: int) -> bytes:
    return json.dumps({"tenant_id": slug, "display_name": "x" * size}).encode()


async def chunks(data: bytes, size: int = 512) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_declared_length_over_the_limit_is_413(
    small_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = unique_slug("big")
    body = json.dumps({"tenant_id": slug, "display_name": "x" * 150, "pad": "p" * 3000}).encode()
    assert len(body) > SMALL_BODY_LIMIT
    response = await small_client.post(
        "/admin/tenants",
        content=body,
        headers={**admin_headers, "content-type": "application/json", "X-Request-ID": "big-1"},
    )
    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["request_id"] == "big-1"
    assert_problem(
        await small_client.get(f"/admin/tenants/{slug}", headers=admin_headers), 404, "not_found"
    )


async def test_streamed_body_over_the_limit_is_413(
    small_client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    before = await snapshot(small_client, admin_headers, tenant_a.slug)
    patch = json.dumps({"general": {"timezone": "Europe/Paris", "pad": "p" * 4000}}).encode()
    assert len(patch) > SMALL_BODY_LIMIT
    response = await small_client.patch(
        "/v1/config",
        content=chunks(patch),
        headers={**tenant_a.headers, "content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")
    assert await snapshot(small_client, admin_headers, tenant_a.slug) == before


async def test_streamed_tenant_create_over_the_limit_is_413_and_creates_nothing(
    small_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    slug = unique_slug("stream")
    response = await small_client.post(
        "/admin/tenants",
        content=chunks(tenant_body(slug, 3000)),
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert_problem(response, 413, "payload_too_large")
    assert_problem(
        await small_client.get(f"/admin/tenants/{slug}", headers=admin_headers), 404, "not_found"
    )


async def test_bodies_under_the_limit_pass_declared_or_streamed(
    small_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    declared = unique_slug("small")
    response = await small_client.post(
        "/admin/tenants",
        content=tenant_body(declared, 100),
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    streamed = unique_slug("small")
    response = await small_client.post(
        "/admin/tenants",
        content=chunks(tenant_body(streamed, 150), size=16),
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["tenant_id"] == streamed


async def test_default_limit_refuses_a_declared_length_over_10_mib(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    before = await snapshot(client, admin_headers, tenant_a.slug)
    response = await client.patch(
        "/v1/config",
        content=b"{}",
        headers={
            **tenant_a.headers,
            "content-type": "application/json",
            "content-length": str(10 * 1024 * 1024 + 1),
        },
    )
    assert_problem(response, 413, "payload_too_large")
    assert await snapshot(client, admin_headers, tenant_a.slug) == before


async def test_non_numeric_content_length_is_400(
    client: httpx.AsyncClient, tenant_a: TenantFixture, admin_headers: dict[str, str]
) -> None:
    """RFC 9112 6.3: an invalid Content-Length makes the framing invalid; the answer is 400."""
    before = await snapshot(client, admin_headers, tenant_a.slug)
    for value in ("abc", "-1", "12abc", "1e3"):
        response = await client.patch(
            "/v1/config",
            content=b"{}",
            headers={
                **tenant_a.headers,
                "content-type": "application/json",
                "content-length": value,
            },
        )
        assert_problem(response, 400, "bad_request")
    assert await snapshot(client, admin_headers, tenant_a.slug) == before
