"""``rotate_secrets``: every stored secret re-encrypted with the current master key, so the old
one can be dropped. Runs on a database of its own: it re-encrypts every row it finds."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from deskpilot.core.context import OperatorContext
from deskpilot.core.secrets import new_master_key
from deskpilot.core.settings import Settings
from deskpilot.platform import Platform
from tests.conftest import TenantFixture, make_settings, new_tenant
from tests.gateway_store_support import OPERATOR_KEY, OWN_KEY, deployment_body, unique


def settings_with(home: Path, url: str, key: str, old: str | None = None) -> Settings:
    extra = {"DESKPILOT_SECRET_KEYS_OLD": old} if old else {}
    return make_settings(home, DATABASE_URL=url, DESKPILOT_SECRET_KEY=key, **extra)


async def secrets_seen(
    platform: Platform, tenant: TenantFixture
) -> tuple[list[str], dict[str, str]]:
    rows = await platform.gateway_store.load_catalogue_rows()
    keys = await platform.gateway_store.own_keys(tenant=tenant.context)
    return (
        [row.deployment.secret() or "" for row in rows],
        {family: key.get_secret_value() for family, key in keys.items()},
    )


async def test_rotation_moves_every_secret_to_the_new_key(
    scratch_database_url: str, tmp_path: Path, operator: OperatorContext
) -> None:
    old, new = new_master_key(), new_master_key()
    family = unique("fam")
    async with await Platform.open(settings_with(tmp_path, scratch_database_url, old)) as first:
        tenant = await new_tenant(first, operator, "rotate", tier="enterprise")
        await first.admin(operator).deployments.create(
            deployment_body(api_key=OPERATOR_KEY, key_family=family, extra_headers={"X": "v"})
        )
        await first.tenant(tenant.context).provider_keys.set(family, OWN_KEY)
        assert await secrets_seen(first, tenant) == ([OPERATOR_KEY], {family: OWN_KEY})

    async with await Platform.open(settings_with(tmp_path, scratch_database_url, new)) as lost:
        assert await secrets_seen(lost, tenant) == ([], {})  # the old key is needed to read

    rotating_settings = settings_with(tmp_path, scratch_database_url, new, old=old)
    async with await Platform.open(rotating_settings) as rotating:
        reports = await rotating.admin(operator).rotate_secrets()
        assert {r.store: (r.rotated, r.total, r.unreadable) for r in reports} == {
            "gateway_deployments": (1, 1, 0),
            "gateway_provider_keys": (1, 1, 0),
        }
        again = await rotating.admin(operator).rotate_secrets()
        assert [r.rotated for r in again] == [0, 0]
        [entry, *_] = await rotating.admin(operator).platform_audit(limit=1)
        assert (entry.action, entry.target) == ("secrets.rotate", rotating.secrets.key_id)

    async with await Platform.open(settings_with(tmp_path, scratch_database_url, new)) as after:
        assert await secrets_seen(after, tenant) == ([OPERATOR_KEY], {family: OWN_KEY})
        keys = await after.gateway_store.own_keys(tenant=tenant.context)
        assert keys == {family: SecretStr(OWN_KEY)}


async def test_rows_no_key_opens_are_counted_and_left_alone(
    scratch_database_url: str, tmp_path: Path, operator: OperatorContext
) -> None:
    lost = new_master_key()
    async with await Platform.open(settings_with(tmp_path, scratch_database_url, lost)) as first:
        await first.admin(operator).deployments.create(deployment_body(api_key=OPERATOR_KEY))
    settings = settings_with(tmp_path, scratch_database_url, new_master_key())
    async with await Platform.open(settings) as other:
        [deployments, keys] = await other.admin(operator).rotate_secrets()
        assert (deployments.rotated, deployments.total, deployments.unreadable) == (0, 1, 1)
        assert (keys.rotated, keys.total) == (0, 0)
    async with await Platform.open(settings_with(tmp_path, scratch_database_url, lost)) as again:
        [row] = await again.gateway_store.load_catalogue_rows()
        assert row.deployment.secret() == OPERATOR_KEY
