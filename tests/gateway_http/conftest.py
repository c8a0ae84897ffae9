"""Fixtures of the gateway's request-path tests: the session platform serving a gateway whose
deployments point at a loopback upstream (real HTTP), and a real deskpilot HTTP server for
the clients that need one (the ``openai`` SDK, disconnects)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from deskpilot.app import create_app
from deskpilot.core.context import OperatorContext
from deskpilot.gateway import (
    BUILTIN_PROVIDERS,
    BreakerConfig,
    Catalogue,
    CircuitBreakers,
    Deployment,
    Gateway,
    ProviderRegistry,
)
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway.support import API_KEY, RecordingSleep, deployment_for, policy
from tests.upstream.server import Upstream

ALIAS = "gpt"


@dataclass
class Harness:
    """The upstream, the gateway the platform serves during the test, and its recorded
    retry waits. ``deploy`` replaces the catalogue."""

    up: Upstream
    gateway: Gateway
    sleep: RecordingSleep

    def deployment(self, name: str = "primary", **overrides: Any) -> Deployment:
        fields: dict[str, Any] = {"name": name, "key": API_KEY, "read_timeout": 2.0}
        fields.update(overrides)
        return deployment_for(self.up, **fields)

    def deploy(
        self,
        deployments: Mapping[str, Sequence[Deployment]],
        *,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        default_alias: str | None = None,
    ) -> None:
        self.gateway.use_catalogue(
            Catalogue(
                {alias: tuple(ds) for alias, ds in deployments.items()},
                {alias: tuple(fs) for alias, fs in (fallbacks or {}).items()},
                default_alias,
            )
        )

    def requests_to(self, path: str = "/v1/chat/completions") -> list[Any]:
        return [r for r in self.up.requests if r.path == path]


@pytest.fixture
async def gw(platform: Platform) -> AsyncIterator[Harness]:
    async with Upstream() as up:
        sleep = RecordingSleep()
        gateway = Gateway(
            catalogue=Catalogue(),
            prices=platform.meter.prices,
            metered=platform.metered,
            providers=ProviderRegistry(BUILTIN_PROVIDERS),
            policy=policy(sleep, max_retries=1),
            breakers=CircuitBreakers(BreakerConfig()),
            own_keys=lambda tenant: platform.gateway_store.own_keys(tenant=tenant),
        )
        original, platform.gateway = platform.gateway, gateway
        harness = Harness(up, gateway, sleep)
        harness.deploy({ALIAS: [harness.deployment()]}, default_alias=ALIAS)
        try:
            yield harness
        finally:
            platform.gateway = original
            await gateway.close()


async def configure(
    platform: Platform, operator: OperatorContext, tenant: TenantFixture, patch: dict[str, Any]
) -> TenantFixture:
    """Apply an operator config patch to the tenant; the fixture with a fresh context."""
    handle = await platform.admin(operator).on_tenant(tenant.slug)
    await handle.config.patch(patch)
    context = await platform.authenticate(tenant.key)
    return TenantFixture(tenant.slug, tenant.key, context)


@pytest.fixture(scope="session")
async def server(platform: Platform) -> AsyncIterator[str]:
    """A real deskpilot HTTP server on a loopback port (the session platform), base URL."""
    config = uvicorn.Config(
        create_app(platform=platform), host="127.0.0.1", port=0, log_config=None, lifespan="off"
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    while not instance.started:  # noqa: ASYNC110  (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    port = instance.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
