"""DDL helpers every migration uses for tenant-owned and platform-owned tables.

A tenant-owned table gets row-level security enabled *and forced* (so even its owner is
subject to it), one policy for the application role keyed on the transaction-local
``deskpilot.tenant_id`` setting, and one for the operator role. The application role has no
BYPASSRLS, so a query that forgets its tenant filter returns nothing rather than another
tenant's rows.
"""

from __future__ import annotations

from alembic import op

from deskpilot.core.db import APP_ROLE, OPERATOR_ROLE

_CURRENT_TENANT = "current_setting('deskpilot.tenant_id', true)"


def create_roles() -> None:
    """Create the two NOLOGIN roles (cluster-wide, so idempotent) and let the migrating user
    switch to them."""
    for role in (APP_ROLE, OPERATOR_ROLE):
        op.execute(  # role names are this module's constants, not input
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
              END IF;
            EXCEPTION WHEN duplicate_object THEN NULL;
            END $$;
            """
        )
        # Role names are this module's constants, not input. Granting again would need
        # ADMIN OPTION on PostgreSQL 16+, so a membership an operator set up is left alone.
        grant = (
            "DO $$ BEGIN IF NOT (SELECT rolsuper FROM pg_roles "  # noqa: S608
            f"WHERE rolname = current_user) AND NOT pg_has_role(current_user, '{role}', "
            f"'MEMBER') THEN EXECUTE 'GRANT {role} TO ' || quote_ident(current_user); "
            "END IF; END $$;"
        )
        op.execute(grant)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {OPERATOR_ROLE}")


def tenant_table(table: str) -> None:
    """Grant and protect a tenant-owned table (``tenant_id`` leads its primary key)."""
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}, {OPERATOR_ROLE}")
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} TO {APP_ROLE} "
        f"USING (tenant_id = {_CURRENT_TENANT}) WITH CHECK (tenant_id = {_CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY operator_access ON {table} TO {OPERATOR_ROLE} "
        "USING (true) WITH CHECK (true)"
    )


def platform_table(table: str, *, app_writes: bool = False) -> None:
    """Grant a platform-owned table: the application reads it, the operator writes it."""
    app_privileges = "SELECT, INSERT, UPDATE, DELETE" if app_writes else "SELECT"
    op.execute(f"GRANT {app_privileges} ON {table} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {OPERATOR_ROLE}")
