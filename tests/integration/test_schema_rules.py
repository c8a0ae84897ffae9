"""Rules every table must follow, checked against the live database catalog so that tables
added by later components are held to them too."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from deskpilot.core.migrate import current_revision, head_revision
from deskpilot.core.models import Base
from deskpilot.platform import Platform

# Indexes a component builds at run time (one per large knowledge base), not migrations.
RUNTIME_INDEX_PREFIXES = ("rag_dense_",)

TENANT_TABLES_SQL = """
SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""


async def _tenant_tables(platform: Platform) -> list[Any]:
    async with platform.resources.db.engine.connect() as conn:
        return list((await conn.execute(text(TENANT_TABLES_SQL))).all())


async def test_tenant_tables_enable_and_force_rls_with_a_policy(platform: Platform) -> None:
    tables = await _tenant_tables(platform)
    assert {t.relname for t in tables} >= {"tenants", "api_keys", "tenant_config", "audit_log"}
    async with platform.resources.db.engine.connect() as conn:
        for table in tables:
            assert table.relrowsecurity, table.relname
            assert table.relforcerowsecurity, table.relname
            policies = (
                await conn.execute(
                    text(
                        "SELECT polname, pg_get_expr(polqual, polrelid), "
                        "array(SELECT rolname FROM pg_roles WHERE oid = ANY(polroles)) "
                        "FROM pg_policy WHERE polrelid = :oid"
                    ),
                    {"oid": table.oid},
                )
            ).all()
            by_name = {p[0]: p for p in policies}
            assert set(by_name) == {"tenant_isolation", "operator_access"}, table.relname
            assert "current_setting('deskpilot.tenant_id'" in by_name["tenant_isolation"][1]
            assert by_name["tenant_isolation"][2] == ["deskpilot_app"], table.relname
            assert by_name["operator_access"][2] == ["deskpilot_operator"], table.relname


async def test_tenant_id_is_not_null_and_leads_every_key_and_index(platform: Platform) -> None:
    async with platform.resources.db.engine.connect() as conn:
        for table in await _tenant_tables(platform):
            nullable = (
                await conn.execute(
                    text(
                        "SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = :oid "
                        "AND attname = 'tenant_id'"
                    ),
                    {"oid": table.oid},
                )
            ).scalar_one()
            assert not nullable, table.relname
            indexes = (
                await conn.execute(
                    text(
                        "SELECT i.indexrelid::regclass::text, i.indisprimary, a.attname, "
                        "pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
                        "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid "
                        "AND a.attnum = i.indkey[0] WHERE i.indrelid = :oid"
                    ),
                    {"oid": table.oid},
                )
            ).all()
            assert any(primary for _, primary, _, _ in indexes), f"{table.relname} has no PK"
            for name, _, first, predicate in indexes:
                pinned = predicate is not None and "tenant_id)::text = '" in predicate
                assert first == "tenant_id" or pinned, (
                    f"index {name} neither leads with tenant_id nor holds one tenant's rows"
                )


async def test_migrations_match_the_models(platform: Platform) -> None:
    assert await current_revision(platform.resources.db) == head_revision()

    def diff(sync_conn: Any) -> list[Any]:
        partitions = {
            row[0]
            for row in sync_conn.execute(text("SELECT relname FROM pg_class WHERE relispartition"))
        }

        def include_name(name: str | None, type_: str, parents: Any) -> bool:
            if type_ == "index" and name is not None and name.startswith(RUNTIME_INDEX_PREFIXES):
                return False
            return not (type_ == "table" and name in partitions)

        context = MigrationContext.configure(
            sync_conn, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, Base.metadata))

    async with platform.resources.db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_foreign_keys_between_tenant_tables_carry_tenant_id(platform: Platform) -> None:
    """Ready for Citus: a reference from one tenant table to another includes tenant_id."""
    tenant_tables = {t.relname for t in await _tenant_tables(platform)}
    async with platform.resources.db.engine.connect() as conn:
        foreign_keys = (
            await conn.execute(
                text(
                    "SELECT conname, conrelid::regclass::text, confrelid::regclass::text, "
                    "array(SELECT attname FROM pg_attribute WHERE attrelid = conrelid "
                    "AND attnum = ANY(conkey)) FROM pg_constraint WHERE contype = 'f' "
                    "AND connamespace = 'public'::regnamespace"
                )
            )
        ).all()
    between_tenant_tables = [
        fk for fk in foreign_keys if fk[1] in tenant_tables and fk[2] in tenant_tables
    ]
    assert between_tenant_tables, "expected tenant tables referencing tenants"
    for name, _, _, columns in between_tenant_tables:
        assert "tenant_id" in columns, f"{name} does not include tenant_id"
