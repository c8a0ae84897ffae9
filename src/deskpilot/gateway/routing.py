"""Which deployments serve a tenant's request: the ``gateway`` config section and the router.

The operator declares deployments under aliases (the deployments file, the admin API); the
layered ``gateway`` section (platform < tier < tenant) says which aliases a tenant may ask
for, what ``default`` means for it, which alias actually serves an asked one, and which
aliases to fall back to. A route is resolved from the catalogue and the tenant's context
alone, in microseconds, with no I/O::

    route = router.route(requested="gpt-4o", tenant=ctx, own_keys=byo)
    route.alias, route.chain          # deployments in the order to try them
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from deskpilot.core.component import ConfigSection
from deskpilot.core.context import TenantContext
from deskpilot.core.errors import BadRequest, DeskpilotError, Forbidden, NotFound, Unavailable
from deskpilot.gateway.config import GatewayConfig
from deskpilot.gateway.schemas import Deployment

DEFAULT_ALIAS = "default"

# Endpoints that refuse every request without a key: a deployment pointing at one with no key
# (and no tenant key to use) is not a route at all.
_KEYED_HOSTS = ("api.openai.com", "api.anthropic.com", ".openai.azure.com")


class GatewaySection(BaseModel):
    """Which model aliases a tenant may use and how its requests are routed. Operator-managed:
    set per tier (``deskpilot tiers``) and per tenant (``deskpilot config``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_aliases: tuple[str, ...] | None = Field(
        default=None,
        description="Aliases the tenant may ask for; None: every alias deployed.",
    )
    default_alias: str | None = Field(
        default=None,
        max_length=128,
        description="Served when a request names no model or asks for 'default'; None: the "
        "deployments file's default_alias.",
    )
    alias_overrides: Mapping[str, str] = Field(
        default_factory=dict,
        description="Alias asked -> alias served, e.g. {'default': 'gpt-4o-eu'}.",
    )
    fallbacks: Mapping[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Alias -> aliases to try in order when its deployments fail; replaces the "
        "deployments file's chain for that alias.",
    )
    max_tokens_limit: int = Field(
        default=16384,
        ge=1,
        le=1_000_000,
        description="The most output tokens one request may ask for; more is refused (400).",
    )
    default_max_tokens: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description="Output tokens reserved (and sent as max_tokens) when a request sets none.",
    )
    byo_keys: Literal["off", "allowed", "required"] = Field(
        default="off",
        description="Tenants' own provider keys: off; allowed (used where stored); required "
        "(only deployments the tenant holds a key for serve it).",
    )

    @model_validator(mode="after")
    def _default_within_limit(self) -> GatewaySection:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("default_max_tokens must not exceed max_tokens_limit")
        return self


SECTION = "gateway"
SECTIONS = (
    ConfigSection(
        SECTION, GatewaySection, tenant_editable=False, description=GatewaySection.__doc__ or ""
    ),
)


def gateway_section(tenant: TenantContext) -> GatewaySection:
    return tenant.parsed(SECTION, GatewaySection)


class _AboutModelError(DeskpilotError):
    def extra(self) -> dict[str, str]:
        return {"param": "model"}


class ModelNotFound(_AboutModelError, NotFound):
    type, title = "model_not_found", "Unknown model"


class ModelNotAllowed(_AboutModelError, Forbidden):
    type, title = "model_not_allowed", "Model not allowed for this tenant"


class ModelRequired(_AboutModelError, BadRequest):
    type, title = "model_required", "No model given and no default configured"


class NoRoute(Unavailable):
    """Nothing can serve the alias: no deployment, no credentials. The operator's (or the
    tenant's, for required own keys) configuration is missing, not the provider down."""

    type, title = "no_provider", "No provider configured"

    def retry_after(self) -> int | None:
        return None  # retrying will not help until someone configures something


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every deployment by alias, the file's fallback chains and default alias. Immutable;
    the gateway swaps in a new one when deployments change."""

    deployments: Mapping[str, tuple[Deployment, ...]] = field(default_factory=dict)
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_alias: str | None = None

    def families(self) -> frozenset[str]:
        return frozenset(d.family for ds in self.deployments.values() for d in ds)


def catalogue_of(config: GatewayConfig | None) -> Catalogue:
    """The catalogue of a deployments file (empty without one)."""
    if config is None:
        return Catalogue()
    return Catalogue(config.deployments, config.fallbacks, config.default_alias)


@dataclass(frozen=True, slots=True)
class Route:
    requested: str  # the alias asked for (the default alias when the request named none)
    alias: str  # the alias that serves it (after the tenant's overrides)
    chain: tuple[Deployment, ...]  # in order: the alias's deployments, then its fallbacks'
    aliases: tuple[str, ...]  # the alias of each deployment in ``chain``
    own_key: frozenset[str]  # names of chain deployments using the tenant's own key

    def alias_of(self, deployment: Deployment) -> str:
        return self.aliases[self.chain.index(deployment)]


def needs_key(deployment: Deployment) -> bool:
    if deployment.api_base is None:  # LiteLLM finds the provider's credentials itself
        return False
    host = (urlsplit(deployment.api_base).hostname or "").lower()
    return deployment.provider == "anthropic" or any(
        host == h or (h.startswith(".") and host.endswith(h)) for h in _KEYED_HOSTS
    )


class Router:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._turns: dict[str, itertools.count[int]] = {}

    def visible_aliases(self, tenant: TenantContext) -> list[str]:
        """The aliases this tenant may ask for that are deployed (its ``/v1/models``)."""
        section = gateway_section(tenant)
        deployed = set(self.catalogue.deployments) | set(section.alias_overrides)
        if section.allowed_aliases is not None:
            deployed &= set(section.allowed_aliases)
        return sorted(deployed)

    def route(
        self,
        *,
        requested: str | None,
        tenant: TenantContext,
        own_keys: Mapping[str, SecretStr],
        section: GatewaySection | None = None,
    ) -> Route:
        """The deployments to try for ``requested`` (None: the default), or a refusal:
        ``ModelRequired`` 400, ``ModelNotFound`` 404, ``ModelNotAllowed`` 403, ``NoRoute``
        503."""
        section = section or gateway_section(tenant)
        catalogue = self.catalogue
        asked = requested or DEFAULT_ALIAS
        known = asked in catalogue.deployments or asked in section.alias_overrides
        if asked == DEFAULT_ALIAS and not known:
            default = section.default_alias or catalogue.default_alias
            if default is None:
                raise ModelRequired(
                    "the request names no model and no default alias is configured: set "
                    "'model' to one of GET /v1/models"
                )
            asked, alias = default, section.alias_overrides.get(default, default)
        else:
            if not known:
                raise ModelNotFound(
                    f"the model {asked!r} does not exist; GET /v1/models lists the models "
                    "available to you"
                )
            if section.allowed_aliases is not None and asked not in section.allowed_aliases:
                raise ModelNotAllowed(f"the model {asked!r} is not available on your plan")
            alias = section.alias_overrides.get(asked, asked)
        if alias not in catalogue.deployments:
            raise NoRoute(
                f"the model {asked!r} is routed to {alias!r}, which has no deployments: the "
                "operator must deploy it (deskpilot serve --config FILE, or /admin/deployments)"
            )
        return self._chain(asked, alias, section, own_keys)

    def _chain(
        self,
        asked: str,
        alias: str,
        section: GatewaySection,
        own_keys: Mapping[str, SecretStr],
    ) -> Route:
        fallbacks = section.fallbacks.get(alias, self.catalogue.fallbacks.get(alias, ()))
        chain: list[Deployment] = []
        aliases: list[str] = []
        own: set[str] = set()
        unkeyed: list[str] = []
        for index, name in enumerate(dict.fromkeys((alias, *fallbacks))):
            deployments: Sequence[Deployment] = self.catalogue.deployments.get(name, ())
            if index == 0:
                deployments = self._balanced(name, deployments)
            for deployment in deployments:
                usable = self._with_key(deployment, section, own_keys)
                if usable is None:
                    unkeyed.append(deployment.family)
                    continue
                if usable is not deployment:
                    own.add(usable.name)
                chain.append(usable)
                aliases.append(name)
        if not chain:
            raise NoRoute(_no_chain_reason(asked, section, unkeyed))
        return Route(asked, alias, tuple(chain), tuple(aliases), frozenset(own))

    def _balanced(self, alias: str, deployments: Sequence[Deployment]) -> Sequence[Deployment]:
        """Round-robin over an alias's deployments: each request starts at the next one and
        falls back through the rest (so load spreads, and a failing one is still skipped)."""
        if len(deployments) < 2:
            return deployments
        turns = self._turns.get(alias)
        if turns is None:
            turns = self._turns.setdefault(alias, itertools.count())
        start = next(turns) % len(deployments)
        return (*deployments[start:], *deployments[:start])

    @staticmethod
    def _with_key(
        deployment: Deployment, section: GatewaySection, own_keys: Mapping[str, SecretStr]
    ) -> Deployment | None:
        if section.byo_keys != "off":
            key = own_keys.get(deployment.family)
            if key is not None:
                return deployment.model_copy(update={"api_key": key})
            if section.byo_keys == "required":
                return None
        if deployment.api_key is None and needs_key(deployment):
            return None
        return deployment


def _no_chain_reason(asked: str, section: GatewaySection, families: Sequence[str]) -> str:
    names = ", ".join(sorted(set(families)))
    if section.byo_keys == "required":
        return (
            f"the model {asked!r} needs your own provider key ({names}): store it with "
            "PUT /v1/provider-keys/{family}"
        )
    return (
        f"no credentials for the model {asked!r}: the operator must set api_key for its "
        f"deployments ({names})"
    )
