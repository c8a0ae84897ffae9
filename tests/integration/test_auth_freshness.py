"""A revoke, suspension or config change reaches every process's credential cache; a database
outage does not turn valid keys into 401s."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from deskpilot.app import create_app
from deskpilot.core.context import OperatorContext, Scope
from deskpilot.core.errors import TenantSuspended, Unauthenticated, Unavailable
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import KeyCreate, TenantStatus
from tests.conftest import make_settings, new_tenant

NOTICE_DEADLINE = 10.0  # generous bound on pub/sub delivery; not a timing assertion


async def _until_refused(platform: Platform, key: str, error: type[Exception]) -> Exception:
    async def poll() -> Exception:
        while True:
            try:
                await platform.authenticate(key)
            except error as exc:
                return exc
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), NOTICE_DEADLINE)


@pytest.mark.redis
async def test_revoke_and_suspend_reach_another_process_through_redis(
    redis_url: str, home: Path, operator: OperatorContext, platform: Platform
) -> None:
    # Two platforms = two processes. The second trusts its cache for an hour, so only the
    # Redis notice can make it notice the change.
    first = await Platform.open(make_settings(home, REDIS_URL=redis_url))
    second = await Platform.open(
        make_settings(home, REDIS_URL=redis_url, DESKPILOT_AUTH_CACHE_SECONDS=3600)
    )
    try:
        assert second.resolver._bus.live
        tenant = await new_tenant(first, operator, "fresh")
        extra = await first.tenant(tenant.context).keys.create(
            KeyCreate(name="other", scopes=(Scope.LLM,))
        )
        assert (await second.authenticate(extra.secret)).key_id == extra.key.key_id
        assert (await second.authenticate(tenant.key)).tenant_id == tenant.slug

        await first.tenant(tenant.context).keys.revoke(extra.key.key_id)
        error = await _until_refused(second, extra.secret, Unauthenticated)
        assert "revoked" in str(error)
        assert (await second.authenticate(tenant.key)).tenant_id == tenant.slug

        await first.admin(operator).set_status(
            tenant.slug, TenantStatus.SUSPENDED, reason="invoice overdue"
        )
        suspended = await _until_refused(second, tenant.key, TenantSuspended)
        assert "invoice overdue" in str(suspended)

        await first.admin(operator).set_status(tenant.slug, TenantStatus.ACTIVE)
        await asyncio.wait_for(_accepted(second, tenant.key), NOTICE_DEADLINE)

        await first.tenant(tenant.context).config.patch({"general": {"timezone": "Asia/Tokyo"}})
        await asyncio.wait_for(_config_seen(second, tenant.key, "Asia/Tokyo"), NOTICE_DEADLINE)
    finally:
        await second.close()
        await first.close()


async def _accepted(platform: Platform, key: str) -> None:
    while True:
        try:
            await platform.authenticate(key)
            return
        except TenantSuspended:
            await asyncio.sleep(0.02)


async def _config_seen(platform: Platform, key: str, timezone: str) -> None:
    # Polls another platform's cache: there is no event in this process to wait on.
    while (await platform.authenticate(key)).section("general")["timezone"] != timezone:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def test_without_redis_another_process_converges_after_the_capped_lifetime(
    home: Path, operator: OperatorContext, platform: Platform
) -> None:
    from deskpilot.tenancy.auth import UNBOUND_TTL

    second = await Platform.open(make_settings(home, DESKPILOT_AUTH_CACHE_SECONDS=3600))
    try:
        assert not second.resolver._bus.live
        tenant = await new_tenant(platform, operator, "nobus")
        await second.authenticate(tenant.key)
        await platform.admin(operator).set_status(tenant.slug, TenantStatus.SUSPENDED, reason="r")
        await asyncio.sleep(UNBOUND_TTL + 0.2)
        with pytest.raises(TenantSuspended):
            await second.authenticate(tenant.key)
    finally:
        await second.close()


async def test_revoke_in_this_process_is_immediate(
    platform: Platform, operator: OperatorContext
) -> None:
    tenant = await new_tenant(platform, operator, "local")
    await platform.authenticate(tenant.key)
    await platform.tenant(tenant.context).keys.revoke(tenant.context.key_id or "")
    with pytest.raises(Unauthenticated, match="revoked"):
        await platform.authenticate(tenant.key)


async def test_database_outage_serves_cached_keys_and_503s_unknown_ones(
    tmp_path: Path, operator: OperatorContext
) -> None:
    """Its own embedded server, stopped mid-test (the shared one must stay up)."""
    settings = make_settings(tmp_path, DESKPILOT_AUTH_CACHE_SECONDS=0.01)
    outage = await Platform.open(settings)
    try:
        tenant = await new_tenant(outage, operator, "outage")
        never_seen = (
            await outage.tenant(tenant.context).keys.create(
                KeyCreate(name="unused", scopes=(Scope.LLM,))
            )
        ).secret
        await outage.authenticate(tenant.key)
        assert outage.resources.db.embedded is not None
        await asyncio.to_thread(outage.resources.db.embedded.stop)
        await asyncio.sleep(0.05)  # let the cached entry pass its freshness

        context = await outage.authenticate(tenant.key)
        assert context.tenant_id == tenant.slug
        with pytest.raises(Unavailable):
            await outage.authenticate(never_seen)

        transport = httpx.ASGITransport(app=create_app(platform=outage))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            known = await client.get("/v1/tenant", headers=tenant.headers)
            unknown = await client.get(
                "/v1/tenant", headers={"Authorization": f"Bearer {never_seen}"}
            )
            ready = await client.get("/readyz")
        assert known.status_code == 503  # authenticated from cache; the read itself cannot run
        assert known.headers["retry-after"] == "1"
        assert known.json()["type"] == "unavailable"
        assert unknown.status_code == 503
        assert ready.status_code == 503

        # The server comes back: pooled connections are stale (no pre-ping), so at most the
        # first use fails, and SQLAlchemy then replaces the whole pool.
        await asyncio.to_thread(outage.resources.db.embedded.start)
        failures = 0
        for _ in range(3):
            try:
                tenant_record = await outage.tenant(context).get()
                break
            except (DBAPIError, OSError):
                failures += 1
        assert failures <= 1
        assert tenant_record.tenant_id == tenant.slug
        assert (await outage.authenticate(never_seen)).tenant_id == tenant.slug
    finally:
        await outage.close()
