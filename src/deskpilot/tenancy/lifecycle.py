"""Tenant creation and deletion: operator jobs that own their units of work."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from deskpilot.core.context import ALL_SCOPES, OperatorContext, TenantContext
from deskpilot.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from deskpilot.core.models import Base
from deskpilot.core.resources import PurgeStep, Resources
from deskpilot.tenancy import repository as repo
from deskpilot.tenancy.contexts import operator_context
from deskpilot.tenancy.models import TenantConfigRow, TenantRow
from deskpilot.tenancy.schemas import Tenant, TenantCreate, TenantStatus
from deskpilot.tenancy.service import TenantService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    tenant_id: str
    rows_deleted: dict[str, int] = field(default_factory=dict)
    purge_steps: int = 0


async def context_for(
    resources: Resources, tenant_id: str, *, operator: OperatorContext
) -> TenantContext:
    """The context an operator acts in on one tenant; 404 if there is no such tenant."""
    async with resources.db.claimed_session(claimed_tenant_id=tenant_id) as session:
        state = await repo.load_tenant_state(session, claimed_tenant_id=tenant_id)
    if state is None:
        raise NotFound(f"no tenant '{tenant_id}'")
    return operator_context(resources.schema, state, operator=operator)


async def create_tenant(
    resources: Resources, body: TenantCreate, *, operator: OperatorContext
) -> Tenant:
    # The new tenant's own binding: RLS admits exactly the rows being created.
    provisional = TenantContext(
        tenant_id=body.tenant_id,
        tier=body.tier,
        config={},
        principal=f"operator:{operator.principal}",
        scopes=ALL_SCOPES,
    )
    async with resources.db.tenant_session(tenant=provisional) as session:
        if await repo.get_tier(session, body.tier) is None:
            raise ValidationFailed("unknown tier", (FieldError("tier", f"no tier '{body.tier}'"),))
        tenants = repo.TenantRepo(session)
        if await tenants.get(tenant=provisional) is not None:
            raise Conflict(f"tenant '{body.tenant_id}' already exists")
        row = tenants.add(
            TenantRow(
                display_name=body.display_name,
                tier=body.tier,
                status="active",
                billing_anchor_day=body.billing_anchor_day,
            ),
            tenant=provisional,
        )
        try:
            await session.flush()  # the tenant row first: the rows below reference it
        except IntegrityError as exc:  # created concurrently
            raise Conflict(f"tenant '{body.tenant_id}' already exists") from exc
        repo.ConfigRepo(session).add(
            TenantConfigRow(overrides={}, revision=0, updated_by=provisional.principal),
            tenant=provisional,
        )
        repo.AuditRepo(session).record(
            tenant=provisional,
            actor=provisional.principal,
            action="tenant.create",
            target=body.tenant_id,
            new=body.model_dump(),
        )
        await session.flush()
        await session.refresh(row)
        return Tenant.model_validate(row)


async def list_tenants(
    resources: Resources,
    *,
    status: TenantStatus | None,
    tier: str | None,
    after: str | None,
    limit: int,
) -> list[Tenant]:
    """Every tenant (the platform-admin listing): the operator role, across tenants."""
    async with resources.db.dangerously_unscoped_session() as session:
        rows = await repo.unscoped_list_tenants(
            session, status=status.value if status else None, tier=tier, after=after, limit=limit
        )
        return [Tenant.model_validate(r) for r in rows]


def tenant_tables() -> list[str]:
    """Every tenant-owned table, children before parents."""
    return [t.name for t in reversed(Base.metadata.sorted_tables) if "tenant_id" in t.c]


async def delete_tenant(
    resources: Resources,
    tenant_id: str,
    *,
    operator: OperatorContext,
    purge_steps: Sequence[PurgeStep],
) -> PurgeReport:
    """Mark the tenant deleted (its keys stop working at once), purge its derived stores,
    then delete its rows from every tenant-owned table. Re-running finishes an interrupted
    deletion."""
    tenant = await context_for(resources, tenant_id, operator=operator)
    async with resources.db.tenant_session(tenant=tenant) as session:
        await TenantService(session).set_status(
            TenantStatus.DELETED, tenant=tenant, reason=f"deleted by {operator.principal}"
        )
    for step in purge_steps:
        await step(resources, tenant=tenant)
    deleted: dict[str, int] = {}
    # The operator role: the usage ledger is append-only for the application role. Every
    # statement names the tenant explicitly.
    async with resources.db.dangerously_unscoped_session() as session:
        for name in tenant_tables():
            table = Base.metadata.tables[name]
            result = await session.execute(
                delete(table).where(table.c.tenant_id == tenant.tenant_id)
            )
            deleted[name] = int(result.rowcount)  # type: ignore[attr-defined]
    log.info(
        "tenant deleted", extra={"tenant_id": tenant_id, "rows": deleted, "by": operator.principal}
    )
    return PurgeReport(tenant_id, deleted, len(purge_steps))
