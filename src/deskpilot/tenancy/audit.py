"""Recording into the audit logs from other components, inside their own unit of work.

A change to one tenant's data goes to that tenant's ``audit_log`` (actor: the context's
principal); an operator change that belongs to no tenant goes to ``platform_audit_log``. Callers
redact secrets before they pass ``old`` and ``new``: the log stores what it is given.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import OperatorContext, TenantContext
from deskpilot.tenancy import repository as repo


def record_tenant_change(
    session: AsyncSession,
    *,
    tenant: TenantContext,
    action: str,
    target: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
    repo.AuditRepo(session).record(
        tenant=tenant, actor=tenant.principal, action=action, target=target, old=old, new=new
    )


def record_platform_change(
    session: AsyncSession,
    *,
    operator: OperatorContext,
    action: str,
    target: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
    repo.record_platform_audit(
        session,
        actor=f"operator:{operator.principal}",
        action=action,
        target=target,
        old=old,
        new=new,
    )
