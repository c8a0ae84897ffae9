"""FastAPI dependencies: the platform, the caller's tenant context, scopes, the operator.

The credential is resolved once per request into an immutable ``TenantContext``; routes take it
through the ``Tenant`` alias (or ``require(scope)``) and pass it on keyword-only.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from deskpilot.core.context import OperatorContext, Scope, TenantContext
from deskpilot.core.errors import Forbidden, Unauthenticated
from deskpilot.platform import Platform
from deskpilot.tenancy import parse_key


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return api_key
    raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'")


async def current_tenant(request: Request, platform: PlatformDep) -> TenantContext:
    client_ip = request.client.host if request.client else None
    context = await platform.authenticate(_bearer(request), client_ip=client_ip)
    state = request.scope.setdefault("state", {})
    state["tenant_id"], state["key_id"] = context.tenant_id, context.key_id
    return context


Tenant = Annotated[TenantContext, Depends(current_tenant)]


def require(scope: Scope) -> Callable[[TenantContext], Awaitable[TenantContext]]:
    """``Annotated[TenantContext, Depends(require(Scope.X))]``: the context, if it holds X."""

    async def dependency(tenant: Tenant) -> TenantContext:
        tenant.require(scope)
        return tenant

    return dependency


TenantAdmin = Annotated[TenantContext, Depends(require(Scope.TENANT_ADMIN))]


async def current_operator(request: Request, platform: PlatformDep) -> OperatorContext:
    token = _bearer(request)
    if parse_key(token) is not None:
        raise Forbidden("admin routes need an operator credential, not a tenant key")
    if not hmac.compare_digest(token.encode(), platform.operator_token.encode()):
        raise Unauthenticated("invalid operator credential")
    request.scope.setdefault("state", {})["tenant_id"] = None
    return OperatorContext(principal="admin")


Operator = Annotated[OperatorContext, Depends(current_operator)]
