"""Tenants' own provider keys: the rules of storing one, the hot-path cache and its freshness,
and that a key never shows up anywhere but in the gateway's own hands."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from deskpilot.core.context import OperatorContext, Scope
from deskpilot.core.errors import MissingScope, NotFound, SecretUnreadable, ValidationFailed
from deskpilot.gateway import ByoKeysDisabled
from deskpilot.gateway.store import cache as cache_module
from deskpilot.gateway.store.provider_keys import key_binding
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate
from tests.conftest import TenantFixture, make_settings, new_tenant
from tests.gateway_store_support import OPERATOR, OWN_KEY, Deployments, on_tier

NOTICE_DEADLINE = 10.0  # generous bound on pub/sub delivery; not a timing assertion


@pytest.fixture
async def acme(platform: Platform, operator: OperatorContext) -> TenantFixture:
    return await new_tenant(platform, operator, "acme", tier="enterprise")


@pytest.fixture
async def globex(platform: Platform, operator: OperatorContext) -> TenantFixture:
    return await new_tenant(platform, operator, "globex", tier="enterprise")


def paths(failure: ValidationFailed) -> set[str]:
    return {error.path for error in failure.errors}


async def test_set_list_replace_delete(
    platform: Platform, acme: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    keys = platform.tenant(acme.context).provider_keys
    stored = await keys.set(family, OWN_KEY)
    assert (stored.family, stored.hint) == (family, "…zyXq")
    assert stored.created_by == acme.context.principal
    assert await keys.list() == [stored]

    replaced = await keys.set(family, SecretStr("sk-replacement-key-abcd1234"))
    assert replaced.hint == "…1234"
    assert replaced.created_at == stored.created_at
    assert replaced.updated_at > stored.updated_at
    assert await platform.gateway_store.own_keys(tenant=acme.context) == {
        family: SecretStr("sk-replacement-key-abcd1234")
    }
    await keys.delete(family)
    assert await keys.list() == []
    with pytest.raises(NotFound):
        await keys.delete(family)
    actions = [e.action for e in await platform.tenant(acme.context).config.audit(limit=5)]
    assert actions[:3] == ["provider_key.delete", "provider_key.replace", "provider_key.set"]


async def test_short_keys_show_no_characters(
    platform: Platform, acme: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    view = await platform.tenant(acme.context).provider_keys.set(family, "short-key-1")
    assert view.hint == "…"


async def test_refused_when_the_tier_does_not_allow_own_keys(
    platform: Platform, tenant_a: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    keys = platform.tenant(tenant_a.context).provider_keys  # pro: byo_keys off
    with pytest.raises(ByoKeysDisabled) as raised:
        await keys.set(family, OWN_KEY)
    assert raised.value.status == 403
    assert OWN_KEY not in str(raised.value)
    assert await keys.list() == []
    enterprise = await on_tier(platform, tenant_a, "enterprise")
    await platform.tenant(enterprise.context).provider_keys.set(family, OWN_KEY)
    downgraded = await on_tier(platform, enterprise, "pro")
    assert await platform.gateway_store.own_keys(tenant=downgraded.context) == {}
    await platform.tenant(downgraded.context).provider_keys.delete(family)  # cleaning up works


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 4097, "sk-with space", "sk-with\ttab", "sk-new\nline", "sk-\x00nul", "sk-ünï"],
)
async def test_malformed_keys_are_refused_without_echo(
    platform: Platform, acme: TenantFixture, deployments: Deployments, bad: str
) -> None:
    family = await deployments.family()
    keys = platform.tenant(acme.context).provider_keys
    with pytest.raises(ValidationFailed) as raised:
        await keys.set(family, bad)
    assert paths(raised.value) == {"api_key"}
    if bad:
        assert bad not in str(raised.value.errors)
    assert await keys.list() == []


async def test_unknown_families_are_refused(
    platform: Platform,
    acme: TenantFixture,
    deployments: Deployments,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = platform.tenant(acme.context).provider_keys
    for family in ("never-deployed-family", "bad family"):
        with pytest.raises(ValidationFailed) as raised:
            await keys.set(family, OWN_KEY)
        assert paths(raised.value) == {"family"}
    assert await keys.list() == []
    # the platform's own provider (the gateway catalogue's families) comes back afterwards:
    # later tests store keys for the catalogue's families
    monkeypatch.setattr(platform.gateway_store, "_families", lambda: {"from-the-catalogue"})
    await keys.set("from-the-catalogue", OWN_KEY)
    assert [k.family for k in await keys.list()] == ["from-the-catalogue"]


async def test_needs_tenant_admin(
    platform: Platform, acme: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    created = await platform.tenant(acme.context).keys.create(
        KeyCreate(name="llm only", scopes=(Scope.LLM,))
    )
    llm = await platform.authenticate(created.secret)
    keys = platform.tenant(llm).provider_keys
    for call in (keys.set(family, OWN_KEY), keys.list(), keys.delete(family)):
        with pytest.raises(MissingScope):
            await call
    assert await platform.gateway_store.own_keys(tenant=llm) == {}  # the gateway reads anyway


async def test_own_keys_are_cached_and_dropped_on_change(
    platform: Platform, acme: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    store, keys = platform.gateway_store, platform.tenant(acme.context).provider_keys
    assert await store.own_keys(tenant=acme.context) == {}
    await keys.set(family, OWN_KEY)
    warm = await store.own_keys(tenant=acme.context)  # dropped by the change, loaded again
    assert warm == {family: SecretStr(OWN_KEY)}
    assert await store.own_keys(tenant=acme.context) is warm  # served from memory
    with pytest.raises(TypeError):
        warm[family] = SecretStr("planted")  # type: ignore[index]
    await keys.delete(family)
    assert await store.own_keys(tenant=acme.context) == {}


async def test_without_a_live_bus_entries_live_at_most_a_second(
    platform: Platform,
    acme: TenantFixture,
    deployments: Deployments,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    family = await deployments.family()
    store = platform.gateway_store
    first = await store.own_keys(tenant=acme.context)
    # Another process changes the keys: this process hears nothing (no Redis).
    sealed = platform.secrets.encrypt(OWN_KEY, bound_to=key_binding(acme.slug, family))
    async with platform.resources.db.dangerously_unscoped_session() as session:
        await session.execute(
            text(
                "INSERT INTO gateway_provider_keys (tenant_id, family, ciphertext, hint, "
                "created_at, updated_at, created_by) VALUES (:t, :f, :c, '…', now(), now(), 'x')"
            ),
            {"t": acme.slug, "f": family, "c": sealed},
        )
    assert await store.own_keys(tenant=acme.context) is first
    now = cache_module.time.monotonic()
    monkeypatch.setattr(
        cache_module.time, "monotonic", lambda: now + cache_module.UNBOUND_TTL + 0.1
    )
    assert await store.own_keys(tenant=acme.context) == {family: SecretStr(OWN_KEY)}


async def test_concurrent_misses_share_one_load(
    platform: Platform,
    acme: TenantFixture,
    deployments: Deployments,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    family = await deployments.family()
    await platform.tenant(acme.context).provider_keys.set(family, OWN_KEY)
    cache = platform.gateway_store._own_keys
    cache.evict(acme.slug)
    loads = 0
    original = cache._load

    async def counted(tenant: object) -> object:
        nonlocal loads
        loads += 1
        return await original(tenant)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "_load", counted)
    results = await asyncio.gather(*(cache.own_keys(tenant=acme.context) for _ in range(20)))
    assert loads == 1
    assert all(r == {family: SecretStr(OWN_KEY)} for r in results)


async def test_one_tenants_keys_never_reach_another(
    platform: Platform, acme: TenantFixture, globex: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    await platform.tenant(acme.context).provider_keys.set(family, OWN_KEY)
    store = platform.gateway_store
    assert await store.own_keys(tenant=globex.context) == {}
    assert await platform.tenant(globex.context).provider_keys.list() == []
    await platform.tenant(globex.context).provider_keys.set(family, "sk-globex-own-key-0000")
    assert await store.own_keys(tenant=acme.context) == {family: SecretStr(OWN_KEY)}
    assert await store.own_keys(tenant=globex.context) == {
        family: SecretStr("sk-globex-own-key-0000")
    }


async def test_a_ciphertext_moved_to_another_tenant_does_not_open(
    platform: Platform,
    acme: TenantFixture,
    globex: TenantFixture,
    deployments: Deployments,
    caplog: pytest.LogCaptureFixture,
) -> None:
    family = await deployments.family()
    await platform.tenant(acme.context).provider_keys.set(family, OWN_KEY)
    await platform.tenant(globex.context).provider_keys.set(family, "sk-globex-own-key-0000")
    async with platform.resources.db.dangerously_unscoped_session() as session:
        await session.execute(
            text(
                "UPDATE gateway_provider_keys SET ciphertext = (SELECT ciphertext FROM "
                "gateway_provider_keys WHERE tenant_id = :a AND family = :f) "
                "WHERE tenant_id = :b AND family = :f"
            ),
            {"a": acme.slug, "b": globex.slug, "f": family},
        )
        moved = (
            await session.execute(
                text("SELECT ciphertext FROM gateway_provider_keys WHERE tenant_id = :b"),
                {"b": globex.slug},
            )
        ).scalar_one()
    with pytest.raises(SecretUnreadable):
        platform.secrets.decrypt(moved, bound_to=key_binding(globex.slug, family))
    platform.gateway_store._own_keys.evict(globex.slug)
    with caplog.at_level(logging.ERROR):
        assert await platform.gateway_store.own_keys(tenant=globex.context) == {}
    assert any(getattr(r, "family", None) == family for r in caplog.records)
    assert OWN_KEY not in caplog.text
    assert await platform.gateway_store.own_keys(tenant=acme.context) == {
        family: SecretStr(OWN_KEY)
    }


async def test_the_key_appears_in_no_log_repr_audit_or_view(
    platform: Platform,
    acme: TenantFixture,
    deployments: Deployments,
    caplog: pytest.LogCaptureFixture,
) -> None:
    family = await deployments.family()
    handle = platform.tenant(acme.context).provider_keys
    with caplog.at_level(logging.DEBUG):
        view = await handle.set(family, OWN_KEY)
        listed = await handle.list()
        keys = await platform.gateway_store.own_keys(tenant=acme.context)
        await handle.set(family, OWN_KEY)
        await handle.delete(family)
    seen = [
        caplog.text,
        repr(view),
        view.model_dump_json(),
        repr(listed),
        repr(keys),
        str(dict(keys)),
        repr(handle),
        repr(platform.gateway_store),
        repr(platform.secrets),
        json.dumps(
            [
                e.model_dump(mode="json")
                for e in await platform.tenant(acme.context).config.audit(limit=10)
            ]
        ),
    ]
    for text_ in seen:
        assert OWN_KEY not in text_
        assert OWN_KEY[:-4] not in text_
    async with platform.resources.db.dangerously_unscoped_session() as session:
        audit = (
            await session.execute(
                text("SELECT old_value::text, new_value::text FROM audit_log WHERE tenant_id = :t"),
                {"t": acme.slug},
            )
        ).all()
    assert audit
    assert all(OWN_KEY not in f"{old}{new}" for old, new in audit)


async def test_deleting_the_tenant_removes_its_keys(
    platform: Platform, acme: TenantFixture, deployments: Deployments
) -> None:
    family = await deployments.family()
    await platform.tenant(acme.context).provider_keys.set(family, OWN_KEY)
    report = await platform.admin(OPERATOR).delete_tenant(acme.slug)
    assert report.rows_deleted["gateway_provider_keys"] == 1
    async with platform.resources.db.dangerously_unscoped_session() as session:
        left = (
            await session.execute(
                text("SELECT count(*) FROM gateway_provider_keys WHERE tenant_id = :t"),
                {"t": acme.slug},
            )
        ).scalar_one()
    assert left == 0


@pytest.mark.redis
async def test_a_change_reaches_another_process_through_redis(
    redis_url: str, home: Path, operator: OperatorContext, platform: Platform
) -> None:
    first = await Platform.open(make_settings(home, REDIS_URL=redis_url))
    second = await Platform.open(
        make_settings(home, REDIS_URL=redis_url, DESKPILOT_AUTH_CACHE_SECONDS=3600)
    )
    made = Deployments(first)
    try:
        family = await made.family()
        tenant = await new_tenant(first, operator, "redis", tier="enterprise")
        assert await second.gateway_store.own_keys(tenant=tenant.context) == {}  # now cached
        await first.tenant(tenant.context).provider_keys.set(family, OWN_KEY)

        async def until_seen() -> None:
            while True:
                if await second.gateway_store.own_keys(tenant=tenant.context):
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until_seen(), NOTICE_DEADLINE)
        assert await second.gateway_store.own_keys(tenant=tenant.context) == {
            family: SecretStr(OWN_KEY)
        }
    finally:
        await made.remove_all()
        await second.close()
        await first.close()
