"""Request bodies and frozen views of stored deployments and provider keys.

Views never carry a credential: a deployment shows ``has_api_key`` and its extra headers' names,
a provider key its family and a hint (``…`` and the last four characters). Bodies hold
credentials as ``SecretStr`` so that no repr, log line or validation error shows them.

The rules a deployment must follow are ``Deployment``'s own (``gateway.schemas``); the bodies
here only add what storing and addressing one needs (an alias, a name usable in a URL, prices).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from deskpilot.core.errors import FieldError, ValidationFailed
from deskpilot.gateway.config_litellm import Findings, parse_entry
from deskpilot.gateway.schemas import LITELLM_PROVIDER, url_credentials

FAMILY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_RE = re.compile(r"^[^\s/\x00-\x1f\x7f]{1,128}$")
_ALIAS_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")


def _name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError("1-128 characters, no whitespace, control characters or '/'")
    return value


def _alias(value: str) -> str:
    if not _ALIAS_RE.fullmatch(value):
        raise ValueError("1-128 characters, no whitespace or control characters")
    return value


def check_family(value: str) -> str:
    if not FAMILY_RE.fullmatch(value):
        raise ValueError(
            "1-64 characters: letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return value


Alias = Annotated[str, AfterValidator(_alias)]
Name = Annotated[str, AfterValidator(_name)]
Family = Annotated[str, AfterValidator(check_family)]
PerMillion = Annotated[Decimal, Field(ge=0, lt=10**12, max_digits=24, decimal_places=12)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PriceIn(_Strict):
    """USD per million tokens, as exact decimals (JSON strings or numbers)."""

    input: PerMillion
    cached_input: PerMillion | None = Field(default=None, description="None: the input price.")
    output: PerMillion


class _Stored(_Strict):
    """What create and update share: a stored ``api_base`` is kept in plain text (keys and
    headers are encrypted), so it may carry no credential."""

    @field_validator("api_base", check_fields=False)
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        found = None if value is None else url_credentials(value)
        if found is not None:
            raise ValueError(
                f"must not carry {found} (stored unencrypted): send the key as api_key and "
                "other secrets as extra_headers"
            )
        return value


class DeploymentCreate(_Stored):
    """A deployment to store. LiteLLM's ``model_list`` entry shape (``model_name``,
    ``litellm_params``, ``model_info``) is accepted too and read as the deployments file reads
    it, except that ``os.environ/NAME`` references are refused: send the value itself."""

    alias: Alias = Field(description="The model name clients ask for; several: load-balanced.")
    name: Name | None = Field(
        default=None, description="Unique deployment name; None: '<alias>#<n>', first free n."
    )
    provider: str = Field(
        description="The provider adapter: openai (OpenAI-compatible) or anthropic."
    )
    model: str = Field(description="The provider's own model name.")
    api_base: str
    api_key: SecretStr | None = None
    key_family: Family | None = None
    read_timeout: float | None = None
    connect_timeout: float | None = None
    max_retries: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    extra_headers: dict[str, SecretStr] | None = Field(
        default=None, description="Header name -> value; values are stored encrypted."
    )
    price: PriceIn | None = None

    @model_validator(mode="before")
    @classmethod
    def _litellm_entry(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.keys() & {"model_name", "litellm_params"}:
            return from_litellm_entry(data)
        return data


class DeploymentUpdate(_Stored):
    """Fields to change (absent: unchanged). ``null`` removes ``api_key``, ``key_family``,
    ``max_retries``, ``rpm``, ``tpm``, ``extra_headers`` or ``price``; ``extra_headers`` and
    ``price`` are replaced whole. The name cannot change (delete and add instead)."""

    alias: Alias | None = None
    provider: str | None = None
    model: str | None = None
    api_base: str | None = None
    api_key: SecretStr | None = None
    key_family: Family | None = None
    read_timeout: float | None = None
    connect_timeout: float | None = None
    max_retries: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    extra_headers: dict[str, SecretStr] | None = None
    price: PriceIn | None = None


class PriceView(_Frozen):
    input: Decimal
    cached_input: Decimal
    output: Decimal


class DeploymentView(_Frozen):
    """A deployment as shown: never its key or header values."""

    name: str
    alias: str
    source: Literal["api", "file"] = Field(
        description="api: stored (admin API or CLI); file: the deployments file (read-only)."
    )
    provider: str
    model: str
    api_base: str
    key_family: str | None
    family: str = Field(description="The key family tenants' own keys are stored under.")
    has_api_key: bool
    extra_header_names: tuple[str, ...]
    read_timeout: float
    connect_timeout: float
    max_retries: int | None
    rpm: int | None
    tpm: int | None
    price: PriceView | None
    secrets_readable: bool = Field(
        description="False: the stored key or headers cannot be decrypted with the configured "
        "master keys; the gateway skips this deployment until they are stored again."
    )
    created_at: datetime | None
    updated_at: datetime | None


class ProviderKeySet(_Strict):
    api_key: SecretStr = Field(description="The provider key. Stored encrypted; never returned.")


class ProviderKeyView(_Frozen):
    """A tenant's own provider key as listed: never the key."""

    family: str
    hint: str = Field(
        description="'…' and the key's last four characters ('…' alone for keys "
        "shorter than 16 characters)."
    )
    created_at: datetime
    updated_at: datetime
    created_by: str = Field(description="Who stored the current key (key:<id>, operator:...).")


def from_litellm_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A LiteLLM ``model_list`` entry as ``DeploymentCreate`` fields, or ``ValidationFailed``
    naming every problem by path (never by value)."""
    findings = Findings()
    parsed = parse_entry("@", entry, ordinal=0, environ={}, default_timeout=None, findings=findings)
    errors = [FieldError(e.path.removeprefix("@").lstrip("."), e.message) for e in findings.errors]
    if findings.missing_env:
        errors.append(
            FieldError(
                "litellm_params",
                "os.environ/ references are read only from the deployments file; send the "
                "values themselves (" + "; ".join(findings.missing_env).replace("@.", "") + ")",
            )
        )
    if errors or parsed is None:
        raise ValidationFailed("deployment refused", tuple(errors) or (FieldError("", "invalid"),))
    deployment = parsed.deployment
    if deployment.provider == LITELLM_PROVIDER:
        raise ValidationFailed(
            "deployment refused",
            (
                FieldError(
                    "litellm_params.model",
                    "only the built-in providers can be stored (openai/, azure/, ollama/, "
                    "ollama_chat/, hosted_vllm/, anthropic/); declare deployments LiteLLM "
                    "serves in the deployments file",
                ),
            ),
        )
    info = entry.get("model_info")
    fields: dict[str, Any] = {
        "alias": parsed.alias,
        "provider": deployment.provider,
        "model": deployment.model,
        "api_base": deployment.api_base,
        "api_key": deployment.secret(),
        "key_family": deployment.key_family,
        "read_timeout": deployment.read_timeout,
        "connect_timeout": deployment.connect_timeout,
        "max_retries": deployment.max_retries,
        "rpm": deployment.rpm,
        "tpm": deployment.tpm,
        "extra_headers": dict(deployment.extra_headers) or None,
    }
    if isinstance(info, Mapping) and "id" in info:
        fields["name"] = deployment.name
    if parsed.price is not None:
        price = parsed.price
        fields["price"] = {
            "input": price.input,
            "cached_input": price.cached_input,
            "output": price.output,
        }
    return fields
