"""Helpers of the tests of the gateway's stored configuration (deployments, own provider keys).

Deployments are platform-wide, so every test names its own (unique names and aliases) and
removes them afterwards (the ``deployments`` fixture of ``tests/conftest.py``), leaving the
shared database's catalogue as it was.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from deskpilot.core.context import OperatorContext
from deskpilot.core.errors import NotFound
from deskpilot.gateway import DeploymentView
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import TenantUpdate

if TYPE_CHECKING:
    from tests.conftest import TenantFixture

OPERATOR = OperatorContext(principal="pytest-gateway")
OPERATOR_KEY = "sk-operator-" + "Q" * 24 + "-end"
OWN_KEY = "sk-tenant-own-" + "W" * 24 + "zyXq"  # hint: …zyXq


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def deployment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alias": unique("alias"),
        "name": unique("dep"),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "api_base": "https://api.openai.com/v1",
    }
    body.update(overrides)
    return body


class Deployments:
    """Creates deployments as the operator and removes them at teardown."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.names: list[str] = []

    async def create(self, **overrides: Any) -> DeploymentView:
        view = await self.platform.admin(OPERATOR).deployments.create(deployment_body(**overrides))
        self.names.append(view.name)
        return view

    async def family(self) -> str:
        """A key family in use by a (new) deployment, unique to the caller."""
        family = unique("fam")
        await self.create(key_family=family)
        return family

    def track(self, name: str) -> None:
        self.names.append(name)

    async def remove_all(self) -> None:
        for name in self.names:
            with contextlib.suppress(NotFound):
                await self.platform.admin(OPERATOR).deployments.delete(name)


async def on_tier(platform: Platform, tenant: TenantFixture, tier: str) -> TenantFixture:
    """The tenant moved to ``tier``, with a context resolved afresh from its key."""
    from tests.conftest import TenantFixture  # conftest imports this module

    await platform.admin(OPERATOR).update_tenant(tenant.slug, TenantUpdate(tier=tier))
    platform.resolver.evict(tenant.slug)
    return TenantFixture(tenant.slug, tenant.key, await platform.authenticate(tenant.key))
