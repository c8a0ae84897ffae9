"""HTTP routes of the gateway's stored configuration: operator deployments under /admin,
a tenant's own provider keys under /v1."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from deskpilot.core.http import problem_responses
from deskpilot.deps import Operator, PlatformDep, TenantAdmin
from deskpilot.gateway.store.schemas import (
    FAMILY_RE,
    DeploymentCreate,
    DeploymentUpdate,
    DeploymentView,
    ProviderKeySet,
    ProviderKeyView,
)

admin_deployments = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
tenant_provider_keys = APIRouter(
    prefix="/v1",
    tags=["tenant"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)

DeploymentName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        description="The deployment's name; '#' in a generated name is sent as %23.",
    ),
]
FamilyName = Annotated[str, Path(pattern=FAMILY_RE.pattern, description="e.g. openai, azure")]
NewDeployment = Annotated[
    DeploymentCreate,
    Body(
        description="A deployment, or a LiteLLM model_list entry (model_name, litellm_params, "
        "model_info) as the deployments file takes it; os.environ/ references are refused."
    ),
]


# ---- operator: deployments ----------------------------------------------------------------


@admin_deployments.get("/deployments")
async def list_deployments(platform: PlatformDep, operator: Operator) -> list[DeploymentView]:
    """Stored deployments and the deployments file's (``source: file``, read-only)."""
    return await platform.admin(operator).deployments.list()


@admin_deployments.post("/deployments", status_code=201)
async def create_deployment(
    body: NewDeployment, platform: PlatformDep, operator: Operator
) -> DeploymentView:
    return await platform.admin(operator).deployments.create(body)


@admin_deployments.get("/deployments/{name}")
async def get_deployment(
    name: DeploymentName, platform: PlatformDep, operator: Operator
) -> DeploymentView:
    return await platform.admin(operator).deployments.get(name)


@admin_deployments.patch("/deployments/{name}")
async def update_deployment(
    name: DeploymentName, body: DeploymentUpdate, platform: PlatformDep, operator: Operator
) -> DeploymentView:
    return await platform.admin(operator).deployments.update(name, body)


@admin_deployments.delete("/deployments/{name}", status_code=204)
async def delete_deployment(
    name: DeploymentName, platform: PlatformDep, operator: Operator
) -> Response:
    await platform.admin(operator).deployments.delete(name)
    return Response(status_code=204)


# ---- tenant: own provider keys ------------------------------------------------------------


@tenant_provider_keys.get("/provider-keys")
async def list_provider_keys(platform: PlatformDep, tenant: TenantAdmin) -> list[ProviderKeyView]:
    """The tenant's own provider keys: family and hint, never the key."""
    return await platform.tenant(tenant).provider_keys.list()


@tenant_provider_keys.put("/provider-keys/{family}")
async def set_provider_key(
    family: FamilyName, body: ProviderKeySet, platform: PlatformDep, tenant: TenantAdmin
) -> ProviderKeyView:
    return await platform.tenant(tenant).provider_keys.set(family, body.api_key)


@tenant_provider_keys.delete("/provider-keys/{family}", status_code=204)
async def delete_provider_key(
    family: FamilyName, platform: PlatformDep, tenant: TenantAdmin
) -> Response:
    await platform.tenant(tenant).provider_keys.delete(family)
    return Response(status_code=204)
