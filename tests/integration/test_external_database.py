"""Start-up checks against an external server (``DATABASE_URL``)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from deskpilot.core.db import Database
from deskpilot.core.errors import SetupError
from tests.conftest import make_settings

# The machine's own PostgreSQL service (no pgvector installed), when it runs.
SYSTEM_POSTGRES = os.environ.get(
    "DESKPILOT_TEST_PLAIN_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def test_unreachable_server_says_how_to_fix_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(SetupError, match=r"cannot connect to PostgreSQL.*DATABASE_URL"):
        await Database.open(settings)


async def _plain_server_without_vector() -> bool:
    try:
        conn = await asyncpg.connect(SYSTEM_POSTGRES, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        )
    finally:
        await conn.close()
    return found == 0


async def test_server_without_pgvector_is_refused_with_a_fix(tmp_path: Path) -> None:
    if not await _plain_server_without_vector():
        pytest.skip(f"no PostgreSQL without pgvector at {SYSTEM_POSTGRES}")
    settings = make_settings(tmp_path, DATABASE_URL=SYSTEM_POSTGRES)
    with pytest.raises(SetupError, match=r"no 'vector' extension.*unset DATABASE_URL"):
        await Database.open(settings)
