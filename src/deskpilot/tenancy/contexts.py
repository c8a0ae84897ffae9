"""Building a ``TenantContext`` from a tenant's stored state."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from deskpilot.core.config import ConfigSchema
from deskpilot.core.context import ALL_SCOPES, OperatorContext, Scope, TenantContext
from deskpilot.core.errors import ValidationFailed
from deskpilot.core.frozen import freeze
from deskpilot.tenancy.repository import TenantState

log = logging.getLogger(__name__)


def effective_config(schema: ConfigSchema, state: TenantState) -> dict[str, object]:
    try:
        return schema.effective(state.tier_config, state.overrides)
    except ValidationFailed as exc:
        # Each layer was valid when written; a later tier or schema change can still clash with
        # an old override. Serve the tier's configuration rather than lock the tenant out.
        log.error(
            "tenant overrides no longer valid; using tier configuration",
            extra={"tenant_id": state.tenant.tenant_id, "errors": [e.path for e in exc.errors]},
        )
        return schema.effective(state.tier_config)


def build_context(
    schema: ConfigSchema,
    state: TenantState,
    *,
    principal: str,
    scopes: Iterable[Scope],
    key_id: str | None = None,
) -> TenantContext:
    return TenantContext(
        tenant_id=state.tenant.tenant_id,
        tier=state.tenant.tier,
        config=freeze(effective_config(schema, state)),
        principal=principal,
        scopes=frozenset(scopes),
        key_id=key_id,
        billing_anchor_day=state.tenant.billing_anchor_day,
    )


def operator_context(
    schema: ConfigSchema, state: TenantState, *, operator: OperatorContext
) -> TenantContext:
    """An operator acting on one tenant (admin routes, CLI): all scopes, that tenant only."""
    return build_context(
        schema, state, principal=f"operator:{operator.principal}", scopes=ALL_SCOPES
    )
