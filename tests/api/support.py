"""Helpers shared by the HTTP tests: the problem-details assertion and admin-API shortcuts.

Every helper goes through HTTP (the admin routes), so the tests exercise the same paths a
client would; the only direct database access is ``expire_key`` (no route can backdate a key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from deskpilot.platform import Platform
from tests.conftest import unique_slug

PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}
PROBLEM_JSON = "application/problem+json"
GENERATED_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(
    response: httpx.Response,
    status: int,
    type_: str,
    *,
    paths: tuple[str, ...] = (),
    extra: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The response is an RFC 9457 problem of ``status``/``type_`` naming at least ``paths``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body.keys() - PROBLEM_FIELDS <= {"errors", *extra}, body
    assert body.keys() >= extra, body
    assert body["status"] == status
    assert body["type"] == type_, body
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"}, error
        assert isinstance(error["path"], str)
        assert isinstance(error["message"], str)
    named = [e["path"] for e in body.get("errors", [])]
    for path in paths:
        assert path in named, f"{path!r} not among the error paths {named}"
    return body


def error_paths(response: httpx.Response) -> list[str]:
    return [e["path"] for e in response.json().get("errors", [])]


async def create_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], prefix: str = "api", tier: str = "pro"
) -> str:
    slug = unique_slug(prefix)
    response = await client.post(
        "/admin/tenants",
        json={"tenant_id": slug, "display_name": f"{prefix} corp", "tier": tier},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return slug


async def admin_key(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    slug: str,
    scopes: tuple[str, ...] = ("tenant:admin",),
    **extra: Any,
) -> dict[str, Any]:
    """A key created by the operator for ``slug``: the ``CreatedApiKey`` JSON."""
    response = await client.post(
        f"/admin/tenants/{slug}/keys",
        json={"name": "made-by-test", "scopes": list(scopes), **extra},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def own_key(
    client: httpx.AsyncClient, headers: dict[str, str], scopes: tuple[str, ...], **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/keys", json={"name": "own", "scopes": list(scopes), **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@dataclass(frozen=True)
class Snapshot:
    """Everything an operator can read about one tenant; equal snapshots mean no write."""

    tenant: dict[str, Any]
    keys: list[dict[str, Any]]
    config: dict[str, Any]
    audit_ids: list[str]


async def snapshot(client: httpx.AsyncClient, admin: dict[str, str], slug: str) -> Snapshot:
    tenant = await client.get(f"/admin/tenants/{slug}", headers=admin)
    keys = await client.get(
        f"/admin/tenants/{slug}/keys", params={"include_revoked": "true"}, headers=admin
    )
    config = await client.get(f"/admin/tenants/{slug}/config", headers=admin)
    audit = await client.get(f"/admin/tenants/{slug}/audit?limit=1000", headers=admin)
    for response in (tenant, keys, config, audit):
        assert response.status_code == 200, response.text
    return Snapshot(
        tenant.json(), keys.json(), config.json(), [e["entry_id"] for e in audit.json()]
    )


async def audit_entries(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/admin/tenants/{slug}/audit?limit=1000", headers=admin)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def expire_key(platform: Platform, slug: str, key_id: str) -> None:
    """Backdate a key's expiry (no route can), then drop any cached resolution of it."""
    async with platform.resources.db.dangerously_unscoped_session() as session:
        result = await session.execute(
            text(
                "UPDATE api_keys SET expires_at = now() - interval '1 minute' "
                "WHERE tenant_id = :tenant AND key_id = :key"
            ),
            {"tenant": slug, "key": key_id},
        )
        assert result.rowcount == 1  # type: ignore[attr-defined]
    platform.resolver.evict(slug)
