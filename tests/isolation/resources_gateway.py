"""The gateway's resources in the isolation suite: tenants' own provider keys, and tenant-scoped
routing (A's alias override, a private alias name, must not show in B's ``/v1/models`` nor
route B's requests).

Both tenants are on the enterprise tier when B tries (its paths ``prepare`` it), so B's
attempts are refused for isolation's sake, not because its plan lacks the feature. B lists its
own keys, stores and deletes a key under A's family (its own row), and reads the gateway's view
of its keys; A's key must still be A's, readable only by A.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from pydantic import SecretStr

from deskpilot.core.errors import NotFound
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway_store_support import OPERATOR, deployment_body, on_tier
from tests.isolation.registry import HttpPath, PythonPath, Resource, Seeded, marker, register

B_KEY = "sk-tenant-b-attempt-0000"


async def as_enterprise(platform: Platform, tenant: TenantFixture) -> TenantFixture:
    return await on_tier(platform, tenant, "enterprise")


async def seed(platform: Platform, a: TenantFixture) -> Seeded:
    family = marker("fam")
    deployment = await platform.admin(OPERATOR).deployments.create(
        deployment_body(name=marker("dep"), key_family=family)
    )
    suffix = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    key = marker("sk-own") + suffix
    a = await as_enterprise(platform, a)
    await platform.tenant(a.context).provider_keys.set(family, key)
    return Seeded(
        ids={"family": family, "tenant_id": a.slug},
        markers=frozenset({family, key, suffix}),
        extra={"key": key, "suffix": suffix, "deployment": deployment.name},
    )


async def intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    family = seeded.ids["family"]
    handle = await platform.admin(OPERATOR).on_tenant(a.slug)
    [view] = await handle.provider_keys.list()
    assert (view.family, view.hint) == (family, "…" + seeded.extra["suffix"])
    own = await platform.gateway_store.own_keys(tenant=handle.context)
    assert own == {family: SecretStr(seeded.extra["key"])}
    # Deployments are platform-wide: leave none behind.
    await platform.admin(OPERATOR).deployments.delete(seeded.extra["deployment"])


async def store_under_a_family(platform: Platform, b: TenantFixture, seeded: Seeded) -> None:
    """B stores its own key under A's family: its own row, which must not touch A's."""
    await platform.tenant(b.context).provider_keys.set(seeded.ids["family"], B_KEY)
    assert await platform.gateway_store.own_keys(tenant=b.context) == {
        seeded.ids["family"]: SecretStr(B_KEY)
    }


register(
    Resource(
        name="provider_key",
        component="gateway",
        tables=("gateway_provider_keys",),
        seed=seed,
        intact=intact,
        python_paths=(
            PythonPath(
                "list",
                "list",
                lambda p, b, s: p.tenant(b.context).provider_keys.list(),
                prepare=as_enterprise,
            ),
            PythonPath(
                "store under A's family", "update", store_under_a_family, prepare=as_enterprise
            ),
            PythonPath(
                "delete A's family",
                "delete",
                lambda p, b, s: p.tenant(b.context).provider_keys.delete(s.ids["family"]),
                prepare=as_enterprise,
            ),
            PythonPath(
                "gateway's own keys",
                "read",
                lambda p, b, s: p.gateway_store.own_keys(tenant=b.context),
                prepare=as_enterprise,
            ),
        ),
        http_paths=(
            HttpPath("list", "list", "GET", "/v1/provider-keys", prepare=as_enterprise),
            HttpPath(
                "store under A's family",
                "update",
                "PUT",
                "/v1/provider-keys/{family}",
                body=lambda s: {"api_key": B_KEY},
                prepare=as_enterprise,
            ),
            HttpPath(
                "store without the feature",
                "update",
                "PUT",
                "/v1/provider-keys/{family}",
                body=lambda s: {"api_key": B_KEY},
            ),
            HttpPath(
                "delete A's family",
                "delete",
                "DELETE",
                "/v1/provider-keys/{family}",
                prepare=as_enterprise,
            ),
        ),
    )
)


async def seed_routing(platform: Platform, a: TenantFixture) -> Seeded:
    private = marker("private-alias")
    handle = await platform.admin(OPERATOR).on_tenant(a.slug)
    await handle.config.patch({"gateway": {"alias_overrides": {private: "gpt-4o"}}})
    return Seeded(ids={"alias": private}, markers=frozenset({private}))


async def intact_routing(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
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
        seed=seed_routing,
        intact=intact_routing,
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
