"""Migration 0003 (gateway) goes down and up again cleanly, on a database of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import text

from deskpilot.core.db import Database
from deskpilot.core.migrate import alembic_config, current_revision, migrate
from tests.conftest import make_settings

TABLES = {"gateway_deployments", "gateway_provider_keys"}


async def downgrade(db: Database, revision: str) -> None:
    def run(sync_conn: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.downgrade(config, revision)

    async with db.engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


async def state(db: Database) -> tuple[set[str], dict[str, Any]]:
    async with db.engine.connect() as conn:
        tables = set(
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'gateway_%'")
                )
            ).scalars()
        )
        config = (
            await conn.execute(text("SELECT config FROM tiers WHERE name = 'enterprise'"))
        ).scalar_one()
    return tables, config


async def test_down_and_up_again(scratch_database_url: str, tmp_path: Path) -> None:
    db = await Database.open(make_settings(tmp_path, DATABASE_URL=scratch_database_url))
    try:
        await migrate(db)
        tables, config = await state(db)
        assert tables == TABLES
        assert config["gateway"] == {"byo_keys": "allowed"}
        async with db.engine.connect() as conn:  # an operator's own gateway setting
            await conn.execute(
                text(
                    "UPDATE tiers SET config = jsonb_set(config, '{gateway,allowed_aliases}', "
                    "'[\"gpt-4o\"]') WHERE name = 'enterprise'"
                )
            )
            await conn.commit()

        await downgrade(db, "0002_metering_quotas")
        assert await current_revision(db) == "0002_metering_quotas"
        tables, config = await state(db)
        assert tables == set()
        assert config["gateway"] == {"allowed_aliases": ["gpt-4o"]}  # the operator's stays
        assert config["keys"] == {"max_active_keys": 200}

        await migrate(db)
        tables, config = await state(db)
        assert tables == TABLES
        assert config["gateway"] == {"allowed_aliases": ["gpt-4o"], "byo_keys": "allowed"}
    finally:
        await db.close()
