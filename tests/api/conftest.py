"""Fixtures of the HTTP tests (the shared ones live in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from deskpilot.app import create_app
from deskpilot.core.settings import Settings
from deskpilot.platform import Platform

SMALL_BODY_LIMIT = 2048


@pytest.fixture(scope="session")
async def small_client(platform: Platform, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose body limit is 2 KiB, so 413 needs no 10 MiB upload."""
    app = create_app(
        settings=settings.model_copy(update={"max_body_bytes": SMALL_BODY_LIMIT}),
        platform=platform,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://deskpilot.test") as c:
        yield c
