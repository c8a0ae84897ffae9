"""Tenancy: tenants, tiers, API keys, layered configuration, audit log.

Other components import from here only: the DTOs, the services and the component declaration.
"""

from deskpilot.core.component import Component
from deskpilot.core.redis import purge_tenant_keys
from deskpilot.tenancy.audit import record_platform_change, record_tenant_change
from deskpilot.tenancy.auth import CredentialResolver
from deskpilot.tenancy.config import SECTIONS
from deskpilot.tenancy.handles import ConfigHandle, KeysHandle, OwnTenantHandle, TenancyAdmin
from deskpilot.tenancy.keys import new_operator_token, parse_key
from deskpilot.tenancy.lifecycle import PurgeReport
from deskpilot.tenancy.schemas import (
    SLUG_RULE,
    ApiKey,
    AuditEntry,
    ConfigView,
    CreatedApiKey,
    KeyCreate,
    SuspendRequest,
    Tenant,
    TenantCreate,
    TenantStatus,
    TenantUpdate,
    Tier,
    TierCreate,
    TierUpdate,
)

# Redis keys are purged here, once for all components: every one is built by ``tenant_key``.
COMPONENT = Component(name="tenancy", config_sections=SECTIONS, purge_steps=(purge_tenant_keys,))

__all__ = [
    "COMPONENT",
    "SLUG_RULE",
    "ApiKey",
    "AuditEntry",
    "ConfigHandle",
    "ConfigView",
    "CreatedApiKey",
    "CredentialResolver",
    "KeyCreate",
    "KeysHandle",
    "OwnTenantHandle",
    "PurgeReport",
    "SuspendRequest",
    "TenancyAdmin",
    "Tenant",
    "TenantCreate",
    "TenantStatus",
    "TenantUpdate",
    "Tier",
    "TierCreate",
    "TierUpdate",
    "new_operator_token",
    "parse_key",
    "record_platform_change",
    "record_tenant_change",
]
