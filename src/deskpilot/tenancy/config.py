"""The tenancy component's configuration sections."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deskpilot.core.component import ConfigSection
from deskpilot.core.context import Scope


class KeysConfig(BaseModel):
    """Limits on a tenant's API keys. Operator-managed: a tenant cannot raise them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_active_keys: int = Field(default=20, ge=1, le=10_000)
    max_lifetime_days: int | None = Field(
        default=None, ge=1, le=3650, description="Keys must expire within this many days."
    )
    allowed_scopes: tuple[Scope, ...] = Field(default=tuple(Scope))


class GeneralConfig(BaseModel):
    """Tenant preferences used when rendering reports and prompts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class SecurityConfig(BaseModel):
    """Tenant-controlled restrictions on where its keys may be used from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ip_allowlist: tuple[IPv4Network | IPv6Network, ...] = Field(
        default=(),
        description="If not empty, keys are accepted only from these networks (CIDR).",
    )


SECTIONS = (
    ConfigSection("keys", KeysConfig, tenant_editable=False, description=KeysConfig.__doc__ or ""),
    ConfigSection(
        "general", GeneralConfig, tenant_editable=True, description=GeneralConfig.__doc__ or ""
    ),
    ConfigSection(
        "security", SecurityConfig, tenant_editable=True, description=SecurityConfig.__doc__ or ""
    ),
)
