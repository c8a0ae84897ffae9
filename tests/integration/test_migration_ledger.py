"""Migration 0004 (the ledger's batch function) goes down and up again, on a database of its
own; only its owner may call it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from deskpilot.core.db import APP_ROLE, OPERATOR_ROLE, Database
from deskpilot.core.migrate import current_revision, migrate
from deskpilot.metering import statements
from tests.conftest import make_settings
from tests.integration.test_migration_gateway import downgrade

PRIVILEGES = """
SELECT has_function_privilege(:role, p.oid, 'EXECUTE')
FROM pg_proc p WHERE p.proname = :name
"""


async def callers(db: Database) -> dict[str, list[bool]]:
    async with db.engine.connect() as conn:
        return {
            role: list(
                (
                    await conn.execute(
                        text(PRIVILEGES), {"role": role, "name": statements.RECORD_FUNCTION}
                    )
                ).scalars()
            )
            for role in (APP_ROLE, OPERATOR_ROLE, "public")
        }


async def test_down_and_up_again(scratch_database_url: str, tmp_path: Path) -> None:
    db = await Database.open(make_settings(tmp_path, DATABASE_URL=scratch_database_url))
    try:
        await migrate(db)
        assert await callers(db) == {APP_ROLE: [False], OPERATOR_ROLE: [False], "public": [False]}
        await downgrade(db, "0003_gateway")
        assert await current_revision(db) == "0003_gateway"
        assert await callers(db) == {APP_ROLE: [], OPERATOR_ROLE: [], "public": []}
        await migrate(db)
        assert await callers(db) == {APP_ROLE: [False], OPERATOR_ROLE: [False], "public": [False]}
    finally:
        await db.close()
