"""The isolation suite's registry. Every component declares here each resource it stores for a
tenant and every path that reads, lists, searches, updates or deletes it, in Python and over
HTTP. ``test_isolation.py`` seeds the resource in tenant A and runs each path as tenant B.

A path may ``prepare`` tenant B first (e.g. move it to a tier where the feature is on), so
that its attempt is not refused for a reason unrelated to isolation.

A path passes when B gets a refusal (NotFound/Forbidden/Unauthenticated in Python; 401, 403 or
404 over HTTP) or a success whose body holds none of A's markers (ids, names, search terms);
afterwards A's data must be intact. ``test_registry_covers_every_tenant_table`` fails when a
tenant-owned table has no resource here, so a new table cannot skip the suite.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from deskpilot.platform import Platform
from tests.conftest import TenantFixture

Kind = Literal["read", "list", "search", "update", "delete", "authenticate"]


def marker(label: str) -> str:
    """A string unique to one seeded value, searched for in everything B receives."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Seeded:
    ids: dict[str, str]
    markers: frozenset[str]
    extra: dict[str, Any] = field(default_factory=dict)


SeedFn = Callable[[Platform, TenantFixture], Awaitable[Seeded]]
IntactFn = Callable[[Platform, TenantFixture, Seeded], Awaitable[None]]
PyCall = Callable[[Platform, TenantFixture, Seeded], Awaitable[Any]]
HttpBody = Callable[[Seeded], Any] | None
Prepare = Callable[[Platform, TenantFixture], Awaitable[TenantFixture]] | None


@dataclass(frozen=True)
class PythonPath:
    name: str
    kind: Kind
    call: PyCall  # runs as tenant B (third argument: what was seeded in A)
    prepare: Prepare = None  # returns B as the call should see it


@dataclass(frozen=True)
class HttpPath:
    name: str
    kind: Kind
    method: str
    path: str  # formatted with Seeded.ids, e.g. "/v1/keys/{key_id}"
    body: HttpBody = None
    # B's credential; "key" (B's tenant:admin key) unless a path needs another
    credential: Literal["key", "forged"] = "key"
    prepare: Prepare = None


@dataclass(frozen=True)
class Resource:
    name: str
    component: str
    tables: tuple[str, ...]
    seed: SeedFn
    intact: IntactFn
    python_paths: tuple[PythonPath, ...]
    http_paths: tuple[HttpPath, ...]


REGISTRY: list[Resource] = []


def register(resource: Resource) -> Resource:
    if any(r.name == resource.name for r in REGISTRY):
        raise ValueError(f"resource {resource.name!r} registered twice")
    REGISTRY.append(resource)
    return resource
