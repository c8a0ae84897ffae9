"""Tier edits are validated, recorded in the platform audit log and reach tenants' contexts."""

from __future__ import annotations

import pytest

from deskpilot.core.context import OperatorContext
from deskpilot.core.errors import Conflict, ValidationFailed
from deskpilot.platform import Platform
from deskpilot.tenancy.schemas import TenantCreate, TierCreate, TierUpdate
from tests.conftest import new_tenant, unique_slug


async def test_tier_lifecycle_is_audited_and_applies_to_its_tenants(
    platform: Platform, operator: OperatorContext
) -> None:
    admin = platform.admin(operator)
    name = unique_slug("tier")
    await admin.create_tier(
        TierCreate(name=name, display_name="Trial", config={"keys": {"max_active_keys": 2}})
    )
    tenant = await new_tenant(platform, operator, "tiered", tier=name)
    assert tenant.context.section("keys")["max_active_keys"] == 2

    with pytest.raises(ValidationFailed) as refused:
        await admin.update_tier(name, TierUpdate(config={"keys": {"max_active_keys": -1}}))
    assert [e.path for e in refused.value.errors] == ["keys.max_active_keys"]
    assert (await admin.get_tier(name)).config == {"keys": {"max_active_keys": 2}}

    await admin.update_tier(name, TierUpdate(config={"keys": {"max_active_keys": 5}}))
    platform.resolver.evict(tenant.slug)
    refreshed = await platform.authenticate(tenant.key)
    assert refreshed.section("keys")["max_active_keys"] == 5

    with pytest.raises(Conflict, match="used by 1 tenant"):
        await admin.delete_tier(name)
    await admin.delete_tenant(tenant.slug)
    await admin.delete_tier(name)

    entries = [e for e in await admin.platform_audit(limit=50) if e.target == name]
    assert [e.action for e in entries] == ["tier.delete", "tier.update", "tier.create"]
    update = entries[1]
    assert update.actor == f"operator:{operator.principal}"
    assert update.old_value is not None
    assert update.new_value is not None
    assert update.old_value["config"] == {"keys": {"max_active_keys": 2}}
    assert update.new_value["config"] == {"keys": {"max_active_keys": 5}}


async def test_tenant_on_unknown_tier_is_refused(
    platform: Platform, operator: OperatorContext
) -> None:
    slug = unique_slug("orphan")
    with pytest.raises(ValidationFailed) as refused:
        await platform.admin(operator).create_tenant(
            TenantCreate(tenant_id=slug, display_name="x", tier="platinum")
        )
    assert [e.path for e in refused.value.errors] == ["tier"]
    assert slug not in {t.tenant_id for t in await platform.admin(operator).list_tenants()}
