"""``deskpilot migrate``: bring the database schema to this version's head."""

from __future__ import annotations

import asyncio

import typer

from deskpilot.cli._common import (
    CliError,
    SchemaState,
    load_settings,
    quiet_logging,
    reports_errors,
)
from deskpilot.cli._common import schema_state as read_schema_state
from deskpilot.core.db import Database
from deskpilot.core.migrate import migrate as apply_migrations
from deskpilot.core.settings import Settings


async def _migrate(settings: Settings) -> tuple[SchemaState, str | None]:
    db = await Database.open(settings)
    try:
        before = await read_schema_state(db)
        if before.current is not None and not before.known:
            raise CliError(before.problem or "unknown database schema revision")
        return before, await apply_migrations(db)
    finally:
        await db.close()


@reports_errors
def migrate() -> None:
    """Apply database migrations (safe to run from several processes at once)."""
    settings = load_settings()
    quiet_logging(settings)
    before, now = asyncio.run(_migrate(settings))
    if before.current == now:
        typer.echo(f"database schema already at {now} (head)")
    else:
        typer.echo(f"database schema migrated from {before.current or 'none'} to {now} (head)")
