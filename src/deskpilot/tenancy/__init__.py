"""Tenancy: tenants, tiers, API keys, layered configuration, audit log.

Other components import from here only: the DTOs, the services and the component declaration.
"""

from deskpilot.core.component import Component
from deskpilot.tenancy.auth import CredentialResolver
from deskpilot.tenancy.config import SECTIONS
from deskpilot.tenancy.schemas import (
    ApiKey,
    AuditEntry,
    ConfigView,
    CreatedApiKey,
    KeyCreate,
    Tenant,
    TenantCreate,
    TenantStatus,
    TenantUpdate,
    Tier,
    TierCreate,
    TierUpdate,
)

COMPONENT = Component(name="tenancy", config_sections=SECTIONS)

__all__ = [
    "COMPONENT",
    "ApiKey",
    "AuditEntry",
    "ConfigView",
    "CreatedApiKey",
    "CredentialResolver",
    "KeyCreate",
    "Tenant",
    "TenantCreate",
    "TenantStatus",
    "TenantUpdate",
    "Tier",
    "TierCreate",
    "TierUpdate",
]
