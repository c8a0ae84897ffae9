"""Layers 2 and 3 of isolation: fail-closed repositories and row-level security."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from deskpilot.core.context import ALL_SCOPES, OperatorContext, Scope, TenantContext
from deskpilot.core.errors import MissingScope, TenantScopeError
from deskpilot.platform import Platform
from deskpilot.tenancy.models import ApiKeyRow, TenantRow
from deskpilot.tenancy.repository import KeyRepo
from deskpilot.tenancy.schemas import KeyCreate
from tests.conftest import TenantFixture

TENANT_TABLES = ("tenants", "api_keys", "tenant_config", "audit_log")


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_raw_select_without_tenant_returns_nothing(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture, table: str
) -> None:
    async with platform.resources.db.unbound_session() as session:
        count = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
    assert count == 0
    async with platform.resources.db.dangerously_unscoped_session() as session:
        present = (
            await session.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id IN (:a, :b)"),  # noqa: S608
                {"a": tenant_a.slug, "b": tenant_b.slug},
            )
        ).scalar_one()
    assert present >= 2  # the rows exist: RLS hid them


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_raw_select_with_tenant_bound_returns_only_its_rows(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture, table: str
) -> None:
    async with platform.resources.db.tenant_session(tenant=tenant_a.context) as session:
        owners = set(
            (
                await session.execute(
                    text(f"SELECT DISTINCT tenant_id FROM {table}")  # noqa: S608
                )
            ).scalars()
        )
    assert owners == {tenant_a.slug}


async def test_orm_query_without_tenant_raises(platform: Platform, tenant_a: TenantFixture) -> None:
    async with platform.resources.db.unbound_session() as session:
        with pytest.raises(TenantScopeError):
            await session.execute(select(ApiKeyRow))


async def test_repository_refuses_missing_or_foreign_tenant(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    async with platform.resources.db.tenant_session(tenant=tenant_a.context) as session:
        repo = KeyRepo(session)
        with pytest.raises(TenantScopeError):
            repo.select(tenant=None)  # type: ignore[arg-type]
        with pytest.raises(TenantScopeError):
            await repo.list_keys(tenant=tenant_b.context, include_revoked=True)


async def test_database_refuses_writing_another_tenants_row(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    db = platform.resources.db
    async with db.tenant_session(tenant=tenant_a.context) as session:
        updated = await session.execute(
            text("UPDATE tenants SET display_name = 'x' WHERE tenant_id = :b"),
            {"b": tenant_b.slug},
        )
        assert updated.rowcount == 0  # type: ignore[attr-defined]  # B's row is invisible
    plant = text(
        "INSERT INTO audit_log (tenant_id, entry_id, at, actor, action, target) "
        "VALUES (:b, 'planted', now(), 'x', 'x', '')"
    )
    with pytest.raises(ProgrammingError, match="row-level security"):
        async with db.tenant_session(tenant=tenant_a.context) as session:
            await session.execute(plant, {"b": tenant_b.slug})
    async with platform.resources.db.tenant_session(tenant=tenant_b.context) as session:
        name = (await session.execute(select(TenantRow.display_name))).scalar_one()
    assert name == "bravo corp"


async def test_binding_does_not_outlive_the_transaction(
    platform: Platform, tenant_a: TenantFixture
) -> None:
    db = platform.resources.db
    for _ in range(3):  # cycle pooled connections
        async with db.tenant_session(tenant=tenant_a.context) as session:
            bound = (
                await session.execute(
                    text("SELECT current_setting('deskpilot.tenant_id', true), current_user")
                )
            ).one()
            assert tuple(bound) == (tenant_a.slug, "deskpilot_app")
    async with db.engine.connect() as conn:
        leftover = (
            await conn.execute(
                text(
                    "SELECT coalesce(current_setting('deskpilot.tenant_id', true), ''), "
                    "current_user"
                )
            )
        ).one()
    assert leftover[0] == ""
    assert leftover[1] != "deskpilot_app"
    async with db.unbound_session() as session:
        assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 0


async def test_application_role_cannot_bypass_rls(platform: Platform) -> None:
    async with platform.resources.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles "
                    "WHERE rolname IN ('deskpilot_app', 'deskpilot_operator') ORDER BY rolname"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("deskpilot_app", False, False, False),
        ("deskpilot_operator", False, False, False),
    ]


async def test_a_forged_context_sees_only_the_claimed_tenant(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """Even a context built by hand (a bug) reaches only the one tenant it names."""
    forged = TenantContext(
        tenant_id=tenant_b.slug, tier="pro", config={}, principal="bug", scopes=ALL_SCOPES
    )
    async with platform.resources.db.tenant_session(tenant=forged) as session:
        owners = set((await session.execute(text("SELECT tenant_id FROM api_keys"))).scalars())
    assert owners == {tenant_b.slug}


async def test_python_api_checks_scopes_too(
    platform: Platform, operator: OperatorContext, tenant_a: TenantFixture
) -> None:
    """The HTTP dependency is not the only gate: a context without tenant:admin cannot manage
    keys or config through the Python API either."""
    narrow = (
        await platform.tenant(tenant_a.context).keys.create(
            KeyCreate(name="narrow", scopes=(Scope.LLM,))
        )
    ).secret
    context = await platform.authenticate(narrow)
    handle = platform.tenant(context)
    for attempt in (
        handle.keys.list(),
        handle.keys.create(KeyCreate(name="escalate", scopes=(Scope.TENANT_ADMIN,))),
        handle.config.view(),
        handle.config.patch({"general": {"locale": "de"}}),
        handle.config.audit(),
    ):
        with pytest.raises(MissingScope):
            await attempt
    assert len(await platform.tenant(tenant_a.context).keys.list()) == 2
