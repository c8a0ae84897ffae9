"""Tenancy's resources in the isolation suite: tenants, API keys, config, audit log."""

from __future__ import annotations

from deskpilot.core.context import OperatorContext, Scope
from deskpilot.core.errors import Unauthenticated
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate, TenantUpdate
from tests.conftest import TenantFixture
from tests.isolation.registry import (
    HttpPath,
    PythonPath,
    Resource,
    Seeded,
    marker,
    register,
)

OPERATOR = OperatorContext(principal="isolation-suite")


# ---- tenants ------------------------------------------------------------------------------


async def seed_tenant(platform: Platform, a: TenantFixture) -> Seeded:
    name = marker("tenant-name")
    await platform.admin(OPERATOR).update_tenant(a.slug, TenantUpdate(display_name=name))
    return Seeded(ids={"tenant_id": a.slug}, markers=frozenset({name}), extra={"name": name})


async def tenant_intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    tenant = await platform.tenant(a.context).get()
    assert tenant.display_name == seeded.extra["name"]
    assert tenant.status == "active"


register(
    Resource(
        name="tenant",
        component="tenancy",
        tables=("tenants",),
        seed=seed_tenant,
        intact=tenant_intact,
        python_paths=(PythonPath("own tenant", "read", lambda p, b, s: p.tenant(b.context).get()),),
        http_paths=(
            HttpPath("own tenant", "read", "GET", "/v1/tenant"),
            HttpPath("admin show", "read", "GET", "/admin/tenants/{tenant_id}"),
            HttpPath("admin list", "list", "GET", "/admin/tenants"),
            HttpPath(
                "admin update",
                "update",
                "PATCH",
                "/admin/tenants/{tenant_id}",
                body=lambda s: {"display_name": "taken over"},
            ),
            HttpPath(
                "admin suspend",
                "update",
                "POST",
                "/admin/tenants/{tenant_id}/suspend",
                body=lambda s: {"reason": "hostile"},
            ),
            HttpPath("admin delete", "delete", "DELETE", "/admin/tenants/{tenant_id}"),
        ),
    )
)


# ---- API keys -----------------------------------------------------------------------------


async def seed_key(platform: Platform, a: TenantFixture) -> Seeded:
    name = marker("key-name")
    created = await platform.tenant(a.context).keys.create(
        KeyCreate(name=name, scopes=(Scope.LLM, Scope.KB_READ))
    )
    key_id = created.key.key_id
    return Seeded(
        ids={"key_id": key_id, "tenant_id": a.slug},
        markers=frozenset({name, key_id}),
        extra={"secret": created.secret},
    )


async def key_intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    key = await platform.tenant(a.context).keys.get(seeded.ids["key_id"])
    assert key.revoked_at is None
    platform.resolver.evict(a.slug)
    context = await platform.authenticate(seeded.extra["secret"])
    assert context.tenant_id == a.slug


async def forged_claim(platform: Platform, b: TenantFixture, seeded: Seeded) -> None:
    forged = seeded.extra["secret"].replace(f"dp_{seeded.ids['tenant_id']}_", f"dp_{b.slug}_", 1)
    try:
        await platform.authenticate(forged)
    except Unauthenticated:
        return
    raise AssertionError("a key presented under another tenant's slug was accepted")


register(
    Resource(
        name="api_key",
        component="tenancy",
        tables=("api_keys",),
        seed=seed_key,
        intact=key_intact,
        python_paths=(
            PythonPath(
                "get", "read", lambda p, b, s: p.tenant(b.context).keys.get(s.ids["key_id"])
            ),
            PythonPath(
                "list", "list", lambda p, b, s: p.tenant(b.context).keys.list(include_revoked=True)
            ),
            PythonPath(
                "revoke", "delete", lambda p, b, s: p.tenant(b.context).keys.revoke(s.ids["key_id"])
            ),
            PythonPath("forged tenant claim", "authenticate", forged_claim),
        ),
        http_paths=(
            HttpPath("get", "read", "GET", "/v1/keys/{key_id}"),
            HttpPath("list", "list", "GET", "/v1/keys?include_revoked=true"),
            HttpPath("revoke", "delete", "DELETE", "/v1/keys/{key_id}"),
            HttpPath("forged tenant claim", "authenticate", "GET", "/v1/keys", credential="forged"),
            HttpPath("admin list", "list", "GET", "/admin/tenants/{tenant_id}/keys"),
            HttpPath(
                "admin revoke", "delete", "DELETE", "/admin/tenants/{tenant_id}/keys/{key_id}"
            ),
            HttpPath(
                "admin create",
                "update",
                "POST",
                "/admin/tenants/{tenant_id}/keys",
                body=lambda s: {"name": "planted", "scopes": ["tenant:admin"]},
            ),
        ),
    )
)


# ---- configuration ------------------------------------------------------------------------


async def seed_config(platform: Platform, a: TenantFixture) -> Seeded:
    locale = "en-" + marker("x").split("-")[1][:8]
    await platform.tenant(a.context).config.patch(
        {"general": {"timezone": "Pacific/Chatham", "locale": locale}}
    )
    return Seeded(
        ids={"tenant_id": a.slug},
        markers=frozenset({"Pacific/Chatham", locale}),
        extra={"locale": locale},
    )


async def config_intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    view = await platform.tenant(a.context).config.view()
    expected = {"timezone": "Pacific/Chatham", "locale": seeded.extra["locale"]}
    assert view.overrides == {"general": expected}


register(
    Resource(
        name="tenant_config",
        component="tenancy",
        tables=("tenant_config",),
        seed=seed_config,
        intact=config_intact,
        python_paths=(
            PythonPath("view", "read", lambda p, b, s: p.tenant(b.context).config.view()),
            PythonPath(
                "patch own",
                "update",
                lambda p, b, s: p.tenant(b.context).config.patch({"general": None}),
            ),
        ),
        http_paths=(
            HttpPath("view", "read", "GET", "/v1/config"),
            HttpPath(
                "patch own",
                "update",
                "PATCH",
                "/v1/config",
                body=lambda s: {"general": {"timezone": "UTC"}},
            ),
            HttpPath("admin view", "read", "GET", "/admin/tenants/{tenant_id}/config"),
            HttpPath(
                "admin patch",
                "update",
                "PATCH",
                "/admin/tenants/{tenant_id}/config",
                body=lambda s: {"general": None},
            ),
        ),
    )
)


# ---- audit log ----------------------------------------------------------------------------


async def seed_audit(platform: Platform, a: TenantFixture) -> Seeded:
    name = marker("audited-key")
    await platform.tenant(a.context).keys.create(KeyCreate(name=name, scopes=(Scope.LLM,)))
    entries = await platform.tenant(a.context).config.audit(limit=5)
    newest = entries[0].entry_id
    return Seeded(
        ids={"entry_id": newest, "tenant_id": a.slug},
        markers=frozenset({name, newest}),
        extra={"count": len(entries)},
    )


async def audit_intact(platform: Platform, a: TenantFixture, seeded: Seeded) -> None:
    entries = await platform.tenant(a.context).config.audit(limit=5)
    assert entries[0].entry_id == seeded.ids["entry_id"]


register(
    Resource(
        name="audit_entry",
        component="tenancy",
        tables=("audit_log",),
        seed=seed_audit,
        intact=audit_intact,
        python_paths=(
            PythonPath("list", "list", lambda p, b, s: p.tenant(b.context).config.audit()),
            PythonPath(
                "list before A's newest",
                "list",
                lambda p, b, s: p.tenant(b.context).config.audit(before="g" * 32),
            ),
        ),
        http_paths=(
            HttpPath("list", "list", "GET", "/v1/audit"),
            HttpPath("list before cursor", "list", "GET", "/v1/audit?before=" + "g" * 32),
            HttpPath("admin list", "list", "GET", "/admin/tenants/{tenant_id}/audit"),
        ),
    )
)
