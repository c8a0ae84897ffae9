"""Shared fixtures: one embedded PostgreSQL per test session, real Redis where marked.

Tests isolate by giving every test its own tenants (unique slugs) rather than by rolling back a
wrapping transaction: the code under test commits for real (credential resolution, invalidation
after commit, tenant deletion run several transactions), and per-tenant isolation is exactly
what this platform guarantees.

``DESKPILOT_TEST_DATABASE_URL`` points the suite at an external server (with pgvector) instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deskpilot.app import create_app
from deskpilot.core.context import OperatorContext, Scope, TenantContext
from deskpilot.core.settings import Settings
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate, TenantCreate
from tests.gateway_store_support import Deployments

ADMIN_TOKEN = "dpo_" + "t" * 48
REDIS_TEST_URL = os.environ.get("DESKPILOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def make_settings(home: Path, **overrides: object) -> Settings:
    env: dict[str, object] = {
        "DESKPILOT_HOME": home,
        "DESKPILOT_ADMIN_TOKEN": ADMIN_TOKEN,
        "DESKPILOT_LOG_JSON": True,
        "DATABASE_URL": os.environ.get("DESKPILOT_TEST_DATABASE_URL"),
    }
    env.update(overrides)
    return Settings.model_validate(env)


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deskpilot-home")


@pytest.fixture(scope="session")
def settings(home: Path) -> Settings:
    return make_settings(home)


@pytest.fixture(scope="session")
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    opened = await Platform.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="session")
def operator() -> OperatorContext:
    return OperatorContext(principal="pytest")


@dataclass(frozen=True)
class TenantFixture:
    """A live tenant with a ``tenant:admin`` key."""

    slug: str
    key: str
    context: TenantContext

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def unique_slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def new_tenant(
    platform: Platform, operator: OperatorContext, prefix: str, tier: str = "pro"
) -> TenantFixture:
    slug = unique_slug(prefix)
    admin = platform.admin(operator)
    await admin.create_tenant(
        TenantCreate(tenant_id=slug, display_name=f"{prefix} corp", tier=tier)
    )
    handle = await admin.on_tenant(slug)
    created = await handle.keys.create(KeyCreate(name="fixture", scopes=(Scope.TENANT_ADMIN,)))
    context = await platform.authenticate(created.secret)
    return TenantFixture(slug, created.secret, context)


@pytest.fixture
async def tenant_a(platform: Platform, operator: OperatorContext) -> TenantFixture:
    return await new_tenant(platform, operator, "alpha")


@pytest.fixture
async def tenant_b(platform: Platform, operator: OperatorContext) -> TenantFixture:
    return await new_tenant(platform, operator, "bravo")


@pytest.fixture(scope="session")
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform=platform)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://deskpilot.test") as c:
        yield c


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def redis_url() -> str:
    """The real Redis the suite needs; CI starts it, so a missing server is a failure."""
    return REDIS_TEST_URL


@pytest.fixture
async def deployments(platform: Platform) -> AsyncIterator[Deployments]:
    """Stored gateway deployments made by the test, removed afterwards (they are global)."""
    made = Deployments(platform)
    try:
        yield made
    finally:
        await made.remove_all()
