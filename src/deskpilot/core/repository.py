"""The base every repository of a tenant-owned table derives from.

It adds the tenant filter itself, and refuses to run without a tenant or with a session bound
to a different tenant. ``guard_session`` adds the same refusal for any ORM statement that
touches a tenant-owned table in a session with no tenant bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.core.db import APP_ROLE
from deskpilot.core.errors import TenantScopeError
from deskpilot.core.models import is_tenant_owned

Row = TypeVar("Row")


class TenantRepository(Generic[Row]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        if not is_tenant_owned(self.model):
            raise TypeError(f"{self.model.__name__} is not tenant-owned")
        self.session = session

    def _check(self, tenant: TenantContext | None) -> str:
        if not isinstance(tenant, TenantContext):
            raise TenantScopeError(f"{self.model.__tablename__} queried without a tenant")
        bound = self.session.info.get("tenant_id")
        if self.session.info.get("db_role") == APP_ROLE and bound != tenant.tenant_id:
            raise TenantScopeError(
                f"session is bound to tenant {bound!r}, call made for {tenant.tenant_id!r}"
            )
        return tenant.tenant_id

    def select(self, *, tenant: TenantContext) -> Select[Any]:
        tenant_id = self._check(tenant)
        return select(self.model).where(self.model.tenant_id == tenant_id)

    async def get(self, *, tenant: TenantContext, **key: Any) -> Row | None:
        stmt = self.select(tenant=tenant).filter_by(**key)
        row: Row | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def list(self, stmt: Select[Any]) -> Sequence[Row]:
        rows: Sequence[Row] = (await self.session.execute(stmt)).scalars().all()
        return rows

    def add(self, row: Row, *, tenant: TenantContext) -> Row:
        tenant_id = self._check(tenant)
        current = getattr(row, "tenant_id", None)
        if current not in (None, tenant_id):
            raise TenantScopeError(f"row belongs to {current!r}, not {tenant_id!r}")
        row.tenant_id = tenant_id  # type: ignore[attr-defined]
        self.session.add(row)
        return row

    async def delete_where(self, *, tenant: TenantContext, **key: Any) -> int:
        tenant_id = self._check(tenant)
        stmt = delete(self.model).where(self.model.tenant_id == tenant_id).filter_by(**key)
        result = await self.session.execute(stmt)
        return int(result.rowcount)  # type: ignore[attr-defined]
