"""Apply Alembic migrations as the connecting (owner) user, one process at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from deskpilot.core.db import Database

# Any fixed 64-bit number; serialises concurrent `migrate` calls (several workers starting).
_MIGRATION_LOCK = 0x6465736B70696C6F

SCRIPT_LOCATION = str(Path(__file__).resolve().parent.parent / "migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate(db: Database) -> str | None:
    """Upgrade to head; returns the revision now applied."""

    def upgrade(sync_conn: Any) -> str | None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.upgrade(config, "head")
        return MigrationContext.configure(sync_conn).get_current_revision()

    # One transaction, holding a transaction-level lock: released by the commit (or rollback),
    # so it cannot stay behind on a pooled connection. Alembic joins the open transaction.
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        revision = await conn.run_sync(upgrade)
        await conn.commit()
    return revision


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
