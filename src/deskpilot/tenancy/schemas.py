"""Frozen DTOs and request bodies of the tenancy component (its public data shapes)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from deskpilot.core.context import Scope

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
SLUG_RULE = (
    "3-40 characters: lowercase letters, digits and hyphens, starting with a letter and not "
    "ending with a hyphen"
)


def check_slug(value: str) -> str:
    if not SLUG_RE.fullmatch(value) or "--" in value:
        raise ValueError(f"invalid slug {value!r}: {SLUG_RULE}")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Slug = Annotated[str, AfterValidator(check_slug)]


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tier(Frozen):
    name: str
    display_name: str
    description: str
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Tenant(Frozen):
    tenant_id: str
    display_name: str
    tier: str
    status: TenantStatus
    status_reason: str | None
    billing_anchor_day: int
    created_at: datetime
    updated_at: datetime


class ApiKey(Frozen):
    """A key as listed: never the secret, which is shown once at creation."""

    key_id: str
    tenant_id: str
    name: str
    prefix: str
    scopes: tuple[Scope, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None


class CreatedApiKey(Frozen):
    key: ApiKey
    secret: str = Field(description="The full key. Shown once; store it now.")


class AuditEntry(Frozen):
    entry_id: str
    at: datetime
    actor: str
    action: str
    target: str
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None


class ConfigView(Frozen):
    """A tenant's configuration: each layer and the effective result (secrets redacted)."""

    tenant_id: str
    tier: str
    revision: int
    effective: dict[str, Any]
    platform: dict[str, Any]
    tier_layer: dict[str, Any]
    overrides: dict[str, Any]


class TenantCreate(Strict):
    tenant_id: Slug = Field(description=f"Slug id: {SLUG_RULE}.")
    display_name: Text = Field(min_length=1, max_length=200)
    tier: Slug = "free"
    billing_anchor_day: int = Field(default=1, ge=1, le=28)


class TenantUpdate(Strict):
    display_name: Text | None = Field(default=None, min_length=1, max_length=200)
    tier: Slug | None = None
    billing_anchor_day: int | None = Field(default=None, ge=1, le=28)


class SuspendRequest(Strict):
    reason: Text = Field(min_length=1, max_length=500)


class TierCreate(Strict):
    name: Slug
    display_name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=2000)
    config: dict[str, Any] = Field(default_factory=dict)


class TierUpdate(Strict):
    display_name: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=2000)
    config: dict[str, Any] | None = Field(
        default=None, description="JSON merge patch onto the tier's layer (null removes a key)."
    )


class KeyCreate(Strict):
    name: Text = Field(min_length=1, max_length=200)
    scopes: tuple[Scope, ...] = Field(min_length=1)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
