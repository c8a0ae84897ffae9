"""The gateway's tenant-scoped routing in the isolation suite: A's alias override (a private
alias name) must not show in B's ``/v1/models`` nor route B's requests. (A's usage events
are the metering resource's; A's own provider keys register with their table.)"""

from __future__ import annotations

from typing import Any

from deskpilot.core.context import OperatorContext
from deskpilot.core.errors import NotFound
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.isolation.registry import HttpPath, PythonPath, Resource, Seeded, marker, register

OPERATOR = OperatorContext(principal="isolation")


async def seed(platform: Platform, a: TenantFixture) -> Seeded:
    private = marker("private-alias")
    handle = await platform.admin(OPERATOR).on_tenant(a.slug)
    await handle.config.patch({"gateway": {"alias_overrides": {private: "gpt-4o"}}})
    return Seeded(ids={"alias": private}, markers=frozenset({private}))


async def intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    context = await platform.authenticate(a.key)
    assert seeded.ids["alias"] in [m["id"] for m in platform.gateway.models(tenant=context)]


async def chat_as(platform: Platform, b: TenantFixture, seeded: Seeded) -> Any:
    body = {"model": seeded.ids["alias"], "messages": [{"role": "user", "content": "hi"}]}
    try:
        await platform.gateway.chat(tenant=b.context, body=body)
    except NotFound:
        return None
    raise AssertionError("B's request was routed by A's alias override")


async def models_as(platform: Platform, b: TenantFixture, seeded: Seeded) -> Any:
    return platform.gateway.models(tenant=b.context)


register(
    Resource(
        name="gateway routing",
        component="gateway",
        tables=(),
        seed=seed,
        intact=intact,
        python_paths=(
            PythonPath("models", "list", models_as),
            PythonPath("chat with A's alias", "read", chat_as),
        ),
        http_paths=(
            HttpPath("models", "list", "GET", "/v1/models"),
            HttpPath(
                "chat with A's alias",
                "read",
                "POST",
                "/v1/chat/completions",
                body=lambda s: {
                    "model": s.ids["alias"],
                    "messages": [{"role": "user", "content": "hi"}],
                },
            ),
        ),
    )
)
