"""Fixtures of the integration tests (the shared ones live in ``tests/conftest.py``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from deskpilot.platform import Platform


@pytest.fixture
async def scratch_database_url(platform: Platform) -> AsyncIterator[str]:
    """An empty database of its own on the session's server, for tests that change what every
    other test relies on (migrating down, re-encrypting every secret). Dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    engine = platform.resources.db.engine
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
