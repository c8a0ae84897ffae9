"""Fixtures of the gateway provider tests: a loopback upstream, a provider, a deployment.

Nothing here needs the database: these tests talk real HTTP to ``tests.upstream`` only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deskpilot.gateway import Deployment, OpenAICompatProvider
from tests.gateway.support import API_KEY, deployment_for
from tests.upstream.server import Upstream


@pytest.fixture
async def up() -> AsyncIterator[Upstream]:
    async with Upstream() as upstream:
        yield upstream


@pytest.fixture
async def provider() -> AsyncIterator[OpenAICompatProvider]:
    instance = OpenAICompatProvider()
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture
def deployment(up: Upstream) -> Deployment:
    return deployment_for(up, name="primary", key=API_KEY)
