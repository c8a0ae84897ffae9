"""Rules of the tenancy component. Services run inside a unit of work they are given and never
commit; ``lifecycle.py`` holds the multi-transaction jobs (tenant creation and deletion)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.config import ConfigSchema, merge_patch
from deskpilot.core.context import OperatorContext, Scope, TenantContext
from deskpilot.core.db import mark_changed
from deskpilot.core.errors import (
    Conflict,
    FieldError,
    LimitReached,
    NotFound,
    ValidationFailed,
)
from deskpilot.core.invalidation import ALL_TENANTS
from deskpilot.tenancy import repository as repo
from deskpilot.tenancy.keys import display_prefix, new_key
from deskpilot.tenancy.models import ApiKeyRow, TenantConfigRow, TierRow
from deskpilot.tenancy.schemas import (
    ApiKey,
    AuditEntry,
    ConfigView,
    CreatedApiKey,
    KeyCreate,
    Tenant,
    TenantStatus,
    TenantUpdate,
    Tier,
    TierCreate,
    TierUpdate,
)


def _key_dto(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        tenant_id=row.tenant_id,
        name=row.name,
        prefix=display_prefix(row.tenant_id, row.key_id),
        scopes=tuple(Scope(s) for s in row.scopes),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class KeysService:
    def __init__(self, session: AsyncSession) -> None:
        self._keys = repo.KeyRepo(session)
        self._tenants = repo.TenantRepo(session)
        self._audit = repo.AuditRepo(session)
        self._session = session

    async def create(self, body: KeyCreate, *, tenant: TenantContext) -> CreatedApiKey:
        tenant.require(Scope.TENANT_ADMIN)
        limits = tenant.section("keys")
        allowed = set(limits.get("allowed_scopes", ()))
        outside = [s for s in body.scopes if s.value not in allowed]
        if outside:
            raise ValidationFailed(
                "scopes not available on this tenant's tier",
                tuple(FieldError("scopes", f"'{s.value}' is not allowed") for s in outside),
            )
        lifetime = limits.get("max_lifetime_days")
        days = body.expires_in_days
        if lifetime is not None and (days is None or days > lifetime):
            raise ValidationFailed(
                "key lifetime too long",
                (FieldError("expires_in_days", f"keys must expire within {lifetime} days"),),
            )
        await self._tenants.get_for_update(tenant=tenant)  # serialises the count below
        now = datetime.now(UTC)
        if await self._keys.count_active(tenant=tenant, now=now) >= limits["max_active_keys"]:
            raise LimitReached(
                f"the tenant already has {limits['max_active_keys']} active keys; revoke one first"
            )
        parsed, digest = new_key(tenant.tenant_id)
        row = self._keys.add(
            ApiKeyRow(
                key_id=parsed.key_id,
                name=body.name,
                secret_hash=digest,
                scopes=sorted(s.value for s in body.scopes),
                created_at=now,
                created_by=tenant.principal,
                expires_at=now + timedelta(days=days) if days is not None else None,
            ),
            tenant=tenant,
        )
        self._audit.record(
            tenant=tenant,
            actor=tenant.principal,
            action="key.create",
            target=parsed.key_id,
            new={"name": body.name, "scopes": row.scopes, "expires_at": _iso(row.expires_at)},
        )
        return CreatedApiKey(key=_key_dto(row), secret=parsed.token)

    async def list(self, *, tenant: TenantContext, include_revoked: bool = False) -> list[ApiKey]:
        tenant.require(Scope.TENANT_ADMIN)
        rows = await self._keys.list_keys(tenant=tenant, include_revoked=include_revoked)
        return [_key_dto(r) for r in rows]

    async def get(self, key_id: str, *, tenant: TenantContext) -> ApiKey:
        tenant.require(Scope.TENANT_ADMIN)
        return _key_dto(await self._row(key_id, tenant=tenant))

    async def revoke(self, key_id: str, *, tenant: TenantContext) -> ApiKey:
        tenant.require(Scope.TENANT_ADMIN)
        row = await self._row(key_id, tenant=tenant)
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            self._audit.record(
                tenant=tenant, actor=tenant.principal, action="key.revoke", target=key_id
            )
            mark_changed(self._session, tenant.tenant_id)
        return _key_dto(row)

    async def _row(self, key_id: str, *, tenant: TenantContext) -> ApiKeyRow:
        row = await self._keys.get(tenant=tenant, key_id=key_id)
        if row is None:
            raise NotFound(f"no API key '{key_id}'")
        return row


class ConfigService:
    def __init__(self, session: AsyncSession, schema: ConfigSchema) -> None:
        self._session = session
        self._schema = schema
        self._config = repo.ConfigRepo(session)
        self._audit = repo.AuditRepo(session)

    async def view(self, *, tenant: TenantContext) -> ConfigView:
        tenant.require(Scope.TENANT_ADMIN)
        state = await self._state(tenant)
        redact = self._schema.redact
        return ConfigView(
            tenant_id=tenant.tenant_id,
            tier=state.tenant.tier,
            revision=state.revision,
            effective=redact(self._schema.effective(state.tier_config, state.overrides)),
            platform=redact(self._schema.defaults()),
            tier_layer=redact(state.tier_config),
            overrides=redact(state.overrides),
        )

    async def patch(
        self, patch: Mapping[str, Any], *, tenant: TenantContext, as_operator: bool
    ) -> ConfigView:
        """Apply a JSON merge patch to the tenant's overrides, validated against all layers."""
        tenant.require(Scope.TENANT_ADMIN)
        if not as_operator:
            self._schema.check_tenant_editable(patch)
        state = await self._state(tenant)
        overrides = merge_patch(state.overrides, patch)
        self._schema.effective(state.tier_config, overrides)  # raises naming the bad fields
        row = await self._config.get(tenant=tenant)
        if row is None:
            row = self._config.add(
                TenantConfigRow(overrides={}, revision=0, updated_by=tenant.principal),
                tenant=tenant,
            )
        row.overrides = overrides
        row.revision += 1
        row.updated_at = datetime.now(UTC)
        row.updated_by = tenant.principal
        self._audit.record(
            tenant=tenant,
            actor=tenant.principal,
            action="config.update",
            target="overrides",
            old=self._schema.redact(state.overrides),
            new=self._schema.redact(overrides),
        )
        mark_changed(self._session, tenant.tenant_id)
        await self._session.flush()
        return await self.view(tenant=tenant)

    async def audit(
        self, *, tenant: TenantContext, limit: int = 100, before: str | None = None
    ) -> list[AuditEntry]:
        tenant.require(Scope.TENANT_ADMIN)
        rows = await self._audit.recent(tenant=tenant, limit=limit, before=before)
        return [AuditEntry.model_validate(r) for r in rows]

    async def _state(self, tenant: TenantContext) -> repo.TenantState:
        state = await repo.load_tenant_state(self._session, claimed_tenant_id=tenant.tenant_id)
        if state is None:
            raise NotFound(f"no tenant '{tenant.tenant_id}'")
        return state


class TenantService:
    """One tenant's own record, for itself or for an operator acting on it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._tenants = repo.TenantRepo(session)
        self._audit = repo.AuditRepo(session)

    async def get(self, *, tenant: TenantContext) -> Tenant:
        row = await self._tenants.get(tenant=tenant)
        if row is None:
            raise NotFound(f"no tenant '{tenant.tenant_id}'")
        return Tenant.model_validate(row)

    async def update(self, body: TenantUpdate, *, tenant: TenantContext) -> Tenant:
        tenant.require(Scope.TENANT_ADMIN)
        row = await self._tenants.get_for_update(tenant=tenant)
        if row is None:
            raise NotFound(f"no tenant '{tenant.tenant_id}'")
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "tier" in changes and await repo.get_tier(self._session, changes["tier"]) is None:
            raise ValidationFailed(
                "unknown tier", (FieldError("tier", f"no tier '{changes['tier']}'"),)
            )
        old = {k: getattr(row, k) for k in changes}
        for field, value in changes.items():
            setattr(row, field, value)
        if changes:
            self._audit.record(
                tenant=tenant,
                actor=tenant.principal,
                action="tenant.update",
                target=tenant.tenant_id,
                old=old,
                new=changes,
            )
            mark_changed(self._session, tenant.tenant_id)
        await self._session.flush()
        return Tenant.model_validate(row)

    async def set_status(
        self, status: TenantStatus, *, tenant: TenantContext, reason: str | None = None
    ) -> Tenant:
        tenant.require(Scope.TENANT_ADMIN)
        row = await self._tenants.get_for_update(tenant=tenant)
        if row is None:
            raise NotFound(f"no tenant '{tenant.tenant_id}'")
        if row.status == TenantStatus.DELETED and status != TenantStatus.DELETED:
            raise Conflict(f"tenant '{tenant.tenant_id}' is being deleted")
        old = {"status": row.status, "reason": row.status_reason}
        row.status, row.status_reason = status.value, reason
        self._audit.record(
            tenant=tenant,
            actor=tenant.principal,
            action=f"tenant.{status.value}",
            target=tenant.tenant_id,
            old=old,
            new={"status": status.value, "reason": reason},
        )
        mark_changed(self._session, tenant.tenant_id)
        await self._session.flush()
        return Tenant.model_validate(row)


class TierService:
    """Platform-owned tiers; writes need the operator session."""

    def __init__(self, session: AsyncSession, schema: ConfigSchema) -> None:
        self._session = session
        self._schema = schema

    async def list_tiers(self) -> list[Tier]:
        return [Tier.model_validate(r) for r in await repo.list_tiers(self._session)]

    async def get(self, name: str) -> Tier:
        return Tier.model_validate(await self._row(name))

    async def create(self, body: TierCreate, *, operator: OperatorContext) -> Tier:
        self._schema.effective(body.config)
        if await repo.get_tier(self._session, body.name) is not None:
            raise Conflict(f"tier '{body.name}' already exists")
        row = TierRow(
            name=body.name,
            display_name=body.display_name,
            description=body.description,
            config=body.config,
        )
        self._session.add(row)
        repo.record_platform_audit(
            self._session,
            actor=f"operator:{operator.principal}",
            action="tier.create",
            target=body.name,
            old=None,
            new={
                "display_name": body.display_name,
                "description": body.description,
                "config": self._schema.redact(body.config),
            },
        )
        await self._flush_unique(body.name)
        return Tier.model_validate(row)

    async def update(self, name: str, body: TierUpdate, *, operator: OperatorContext) -> Tier:
        row = await self._row(name)
        old = {
            "display_name": row.display_name,
            "description": row.description,
            "config": self._schema.redact(row.config),
        }
        if body.config is not None:
            config = merge_patch(row.config, body.config)
            self._schema.effective(config)
            row.config = config
        if body.display_name is not None:
            row.display_name = body.display_name
        if body.description is not None:
            row.description = body.description
        new = {
            "display_name": row.display_name,
            "description": row.description,
            "config": self._schema.redact(row.config),
        }
        repo.record_platform_audit(
            self._session,
            actor=f"operator:{operator.principal}",
            action="tier.update",
            target=name,
            old=old,
            new=new,
        )
        if body.config is not None:
            mark_changed(self._session, ALL_TENANTS)  # every tenant on the tier
        await self._session.flush()
        return Tier.model_validate(row)

    async def delete(self, name: str, *, operator: OperatorContext) -> None:
        row = await self._row(name)
        in_use = await repo.unscoped_count_tenants_on_tier(self._session, name)
        if in_use:
            raise Conflict(f"tier '{name}' is used by {in_use} tenant(s); move them first")
        await self._session.delete(row)
        repo.record_platform_audit(
            self._session,
            actor=f"operator:{operator.principal}",
            action="tier.delete",
            target=name,
            old={"config": self._schema.redact(row.config)},
            new=None,
        )

    async def audit(self, *, limit: int, before: str | None) -> list[AuditEntry]:
        rows = await repo.list_platform_audit(self._session, limit=limit, before=before)
        return [AuditEntry.model_validate(r) for r in rows]

    async def _row(self, name: str) -> TierRow:
        row = await repo.get_tier(self._session, name)
        if row is None:
            raise NotFound(f"no tier '{name}'")
        return row

    async def _flush_unique(self, name: str) -> None:
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise Conflict(f"tier '{name}' already exists") from exc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
