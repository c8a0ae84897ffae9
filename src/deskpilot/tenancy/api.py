"""HTTP routes of the tenancy component: operator routes under /admin, self-service under /v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from deskpilot.core.http import problem_responses
from deskpilot.deps import Operator, PlatformDep, Tenant, TenantAdmin
from deskpilot.tenancy.lifecycle import PurgeReport
from deskpilot.tenancy.schemas import (
    SLUG_RE,
    ApiKey,
    AuditEntry,
    ConfigView,
    CreatedApiKey,
    KeyCreate,
    SuspendRequest,
    TenantCreate,
    TenantStatus,
    TenantUpdate,
    Tier,
    TierCreate,
    TierUpdate,
)
from deskpilot.tenancy.schemas import (
    Tenant as TenantOut,
)

admin = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
tenant_api = APIRouter(
    prefix="/v1",
    tags=["tenant"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)

ConfigPatch = Annotated[
    dict[str, Any],
    Body(description="JSON merge patch (RFC 7396) onto the tenant's overrides; null removes."),
]
Limit = Annotated[int, Query(ge=1, le=1000)]
TenantId = Annotated[str, Path(pattern=SLUG_RE.pattern)]
TierName = Annotated[str, Path(pattern=SLUG_RE.pattern)]
KeyId = Annotated[str, Path(pattern=r"^[a-z0-9]{10}$")]
AuditCursor = Annotated[str | None, Query(pattern=r"^[0-9a-z]{1,32}$")]


# ---- operator: tiers ----------------------------------------------------------------------


@admin.get("/tiers")
async def list_tiers(platform: PlatformDep, operator: Operator) -> list[Tier]:
    return await platform.admin(operator).list_tiers()


@admin.post("/tiers", status_code=201)
async def create_tier(body: TierCreate, platform: PlatformDep, operator: Operator) -> Tier:
    return await platform.admin(operator).create_tier(body)


@admin.get("/tiers/{name}")
async def get_tier(name: TierName, platform: PlatformDep, operator: Operator) -> Tier:
    return await platform.admin(operator).get_tier(name)


@admin.patch("/tiers/{name}")
async def update_tier(
    name: TierName, body: TierUpdate, platform: PlatformDep, operator: Operator
) -> Tier:
    return await platform.admin(operator).update_tier(name, body)


@admin.delete("/tiers/{name}", status_code=204)
async def delete_tier(name: TierName, platform: PlatformDep, operator: Operator) -> Response:
    await platform.admin(operator).delete_tier(name)
    return Response(status_code=204)


@admin.get("/audit")
async def platform_audit(
    platform: PlatformDep, operator: Operator, limit: Limit = 100, before: AuditCursor = None
) -> list[AuditEntry]:
    """Operator changes that belong to no tenant (tier edits), newest first."""
    return await platform.admin(operator).platform_audit(limit=limit, before=before)


# ---- operator: tenants --------------------------------------------------------------------


@admin.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, platform: PlatformDep, operator: Operator) -> TenantOut:
    return await platform.admin(operator).create_tenant(body)


@admin.get("/tenants")
async def list_tenants(
    platform: PlatformDep,
    operator: Operator,
    status: TenantStatus | None = None,
    tier: str | None = None,
    after: Annotated[
        str | None,
        Query(description="Cursor: the last tenant id seen.", pattern=r"^[a-z0-9-]{1,40}$"),
    ] = None,
    limit: Limit = 100,
) -> list[TenantOut]:
    return await platform.admin(operator).list_tenants(
        status=status, tier=tier, after=after, limit=limit
    )


@admin.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: TenantId, platform: PlatformDep, operator: Operator) -> TenantOut:
    return await platform.admin(operator).get_tenant(tenant_id)


@admin.patch("/tenants/{tenant_id}")
async def update_tenant(
    tenant_id: TenantId, body: TenantUpdate, platform: PlatformDep, operator: Operator
) -> TenantOut:
    return await platform.admin(operator).update_tenant(tenant_id, body)


@admin.post("/tenants/{tenant_id}/suspend")
async def suspend_tenant(
    tenant_id: TenantId, body: SuspendRequest, platform: PlatformDep, operator: Operator
) -> TenantOut:
    return await platform.admin(operator).set_status(
        tenant_id, TenantStatus.SUSPENDED, reason=body.reason
    )


@admin.post("/tenants/{tenant_id}/resume")
async def resume_tenant(
    tenant_id: TenantId, platform: PlatformDep, operator: Operator
) -> TenantOut:
    return await platform.admin(operator).set_status(tenant_id, TenantStatus.ACTIVE)


@admin.delete("/tenants/{tenant_id}")
async def delete_tenant(
    tenant_id: TenantId, platform: PlatformDep, operator: Operator
) -> PurgeReport:
    return await platform.admin(operator).delete_tenant(tenant_id)


@admin.get("/tenants/{tenant_id}/keys")
async def admin_list_keys(
    tenant_id: TenantId, platform: PlatformDep, operator: Operator, include_revoked: bool = False
) -> list[ApiKey]:
    handle = await platform.admin(operator).on_tenant(tenant_id)
    return await handle.keys.list(include_revoked=include_revoked)


@admin.post("/tenants/{tenant_id}/keys", status_code=201)
async def admin_create_key(
    tenant_id: TenantId, body: KeyCreate, platform: PlatformDep, operator: Operator
) -> CreatedApiKey:
    return await (await platform.admin(operator).on_tenant(tenant_id)).keys.create(body)


@admin.delete("/tenants/{tenant_id}/keys/{key_id}")
async def admin_revoke_key(
    tenant_id: TenantId, key_id: KeyId, platform: PlatformDep, operator: Operator
) -> ApiKey:
    return await (await platform.admin(operator).on_tenant(tenant_id)).keys.revoke(key_id)


@admin.get("/tenants/{tenant_id}/config")
async def admin_get_config(
    tenant_id: TenantId, platform: PlatformDep, operator: Operator
) -> ConfigView:
    return await (await platform.admin(operator).on_tenant(tenant_id)).config.view()


@admin.patch("/tenants/{tenant_id}/config")
async def admin_patch_config(
    tenant_id: TenantId, patch: ConfigPatch, platform: PlatformDep, operator: Operator
) -> ConfigView:
    return await (await platform.admin(operator).on_tenant(tenant_id)).config.patch(patch)


@admin.get("/tenants/{tenant_id}/audit")
async def admin_audit(
    tenant_id: TenantId,
    platform: PlatformDep,
    operator: Operator,
    limit: Limit = 100,
    before: AuditCursor = None,
) -> list[AuditEntry]:
    handle = await platform.admin(operator).on_tenant(tenant_id)
    return await handle.config.audit(limit=limit, before=before)


# ---- tenant self-service ------------------------------------------------------------------


@tenant_api.get("/tenant")
async def own_tenant(platform: PlatformDep, tenant: Tenant) -> TenantOut:
    return await platform.tenant(tenant).get()


@tenant_api.get("/config")
async def own_config(platform: PlatformDep, tenant: TenantAdmin) -> ConfigView:
    return await platform.tenant(tenant).config.view()


@tenant_api.patch("/config")
async def patch_own_config(
    patch: ConfigPatch, platform: PlatformDep, tenant: TenantAdmin
) -> ConfigView:
    return await platform.tenant(tenant).config.patch(patch)


@tenant_api.get("/audit")
async def own_audit(
    platform: PlatformDep, tenant: TenantAdmin, limit: Limit = 100, before: AuditCursor = None
) -> list[AuditEntry]:
    return await platform.tenant(tenant).config.audit(limit=limit, before=before)


@tenant_api.get("/keys")
async def own_keys(
    platform: PlatformDep, tenant: TenantAdmin, include_revoked: bool = False
) -> list[ApiKey]:
    return await platform.tenant(tenant).keys.list(include_revoked=include_revoked)


@tenant_api.post("/keys", status_code=201)
async def create_own_key(
    body: KeyCreate, platform: PlatformDep, tenant: TenantAdmin
) -> CreatedApiKey:
    return await platform.tenant(tenant).keys.create(body)


@tenant_api.get("/keys/{key_id}")
async def own_key(key_id: KeyId, platform: PlatformDep, tenant: TenantAdmin) -> ApiKey:
    return await platform.tenant(tenant).keys.get(key_id)


@tenant_api.delete("/keys/{key_id}")
async def revoke_own_key(key_id: KeyId, platform: PlatformDep, tenant: TenantAdmin) -> ApiKey:
    return await platform.tenant(tenant).keys.revoke(key_id)
