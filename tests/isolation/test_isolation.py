"""Tenant B against tenant A, through every registered path (see ``registry.py``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.encoders import jsonable_encoder
from sqlalchemy import text

from deskpilot.core.errors import Forbidden, NotFound, Unauthenticated
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.isolation import (  # noqa: F401  (each module registers its resources)
    resources_gateway,
    resources_metering,
    resources_quotas,
    resources_rag,
    resources_tenancy,
)
from tests.isolation.registry import REGISTRY, HttpPath, PythonPath, Resource, Seeded

REFUSED = {401, 403, 404}

PY_CASES = [(r, p) for r in REGISTRY for p in r.python_paths]
HTTP_CASES = [(r, p) for r in REGISTRY for p in r.http_paths]


def _case_id(case: Any) -> str:
    return f"{case.name}:{case.kind}" if isinstance(case, PythonPath | HttpPath) else case.name


def _leaked(payload: str, seeded: Seeded, a: TenantFixture, sent: str) -> set[str]:
    """A's markers (and slug) present in what B received, except those B itself sent."""
    markers = set(seeded.markers) | {a.slug}
    return {m for m in markers if m in payload and m not in sent}


@pytest.mark.parametrize(
    ("resource", "path"), PY_CASES, ids=[f"{r.name}-{_case_id(p)}" for r, p in PY_CASES]
)
async def test_python_path_as_other_tenant(
    platform: Platform,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    resource: Resource,
    path: PythonPath,
) -> None:
    seeded = await resource.seed(platform, tenant_a)
    if path.prepare is not None:
        tenant_b = await path.prepare(platform, tenant_b)
    try:
        result = await path.call(platform, tenant_b, seeded)
    except (NotFound, Forbidden, Unauthenticated):
        result = None
    payload = json.dumps(jsonable_encoder(result))
    assert not _leaked(payload, seeded, tenant_a, sent="")
    await resource.intact(platform, tenant_a, seeded)


@pytest.mark.parametrize(
    ("resource", "path"), HTTP_CASES, ids=[f"{r.name}-{_case_id(p)}" for r, p in HTTP_CASES]
)
async def test_http_path_as_other_tenant(
    platform: Platform,
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    resource: Resource,
    path: HttpPath,
) -> None:
    seeded = await resource.seed(platform, tenant_a)
    if path.prepare is not None:
        tenant_b = await path.prepare(platform, tenant_b)
    url = path.path.format(**seeded.ids)
    body = path.body(seeded) if path.body else None
    key = tenant_b.key
    if path.credential == "forged":
        key = seeded.extra["secret"].replace(f"dp_{tenant_a.slug}_", f"dp_{tenant_b.slug}_", 1)
    response = await client.request(
        path.method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code < 500, response.text
    if path.credential == "forged":
        assert response.status_code == 401
    sent = url + json.dumps(body)
    leaked = _leaked(response.text, seeded, tenant_a, sent)
    assert not leaked, f"{path.method} {url} -> {response.status_code} leaked {leaked}"
    if response.status_code not in REFUSED:
        assert response.status_code < 300, response.text
    await resource.intact(platform, tenant_a, seeded)


def test_every_resource_has_python_and_http_paths() -> None:
    assert REGISTRY
    for resource in REGISTRY:
        assert resource.python_paths, resource.name
        assert resource.http_paths, resource.name


async def test_registry_covers_every_tenant_table(platform: Platform) -> None:
    """Every table with a tenant_id column is some registered resource's table."""
    async with platform.resources.db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            )
        )
        tenant_tables = {r[0] for r in rows}
    covered = {t for r in REGISTRY for t in r.tables}
    assert tenant_tables, "no tenant-owned tables found"
    assert tenant_tables <= covered, f"not in the isolation suite: {tenant_tables - covered}"
