"""What the provider layer is given (a ``Deployment``) and what it hands back (results, stream
items). Bodies stay the provider's OpenAI-shaped JSON: the gateway passes them through."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
)

if TYPE_CHECKING:
    from deskpilot.gateway.errors import ProviderError

LITELLM_PROVIDER = "litellm"
# Set by the provider itself; a deployment overriding them would break the request or its auth.
_RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host", "accept"})


class Deployment(BaseModel):
    """One upstream model behind one endpoint and credential.

    ``name`` is what the gateway routes and reports by; ``model`` is the provider's own model
    name, sent upstream in place of whatever the caller asked for. ``read_timeout`` bounds
    each wait for bytes (for a stream: the gap between chunks), not the whole call.
    ``api_base`` may be left out only for provider ``litellm``, whose providers mostly have a
    fixed endpoint LiteLLM knows (Bedrock, Vertex AI, ...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    provider: str = Field(default="openai", min_length=1)
    model: str = Field(min_length=1)
    api_base: str | None = Field(
        default=None,
        validate_default=True,
        description="e.g. https://api.openai.com/v1 (no trailing path)",
    )
    api_key: SecretStr | None = Field(default=None, description="None: no Authorization header")
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=10, description="None: the policy's")
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    # Header values may be credentials too (an organisation id, a proxy token): kept out of repr.
    extra_headers: Mapping[str, str] = Field(default_factory=dict, repr=False)
    key_family: str | None = Field(
        default=None,
        max_length=64,
        description="Whose provider key a tenant's own key replaces (openai, azure, anthropic"
        ", ...); None: the provider's name.",
    )

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            # An invalid provider is absent from info.data and already refused: no second error.
            if info.data.get("provider", LITELLM_PROVIDER) != LITELLM_PROVIDER:
                raise ValueError(f"required, except for provider {LITELLM_PROVIDER!r}")
            return None
        base = value.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return base

    @field_validator("extra_headers")
    @classmethod
    def _own_headers(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        clashing = sorted(name for name in value if name.lower() in _RESERVED_HEADERS)
        if clashing:
            raise ValueError(f"set by the provider, not by extra_headers: {', '.join(clashing)}")
        return MappingProxyType(dict(value))

    @field_serializer("extra_headers")
    def _plain_headers(self, value: Mapping[str, str]) -> dict[str, str]:
        return dict(value)

    @property
    def family(self) -> str:
        """The key family a tenant's own provider key (BYO) is stored under."""
        return self.key_family or self.provider

    def secret(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def url(self, path: str) -> str:
        """``api_base`` + ``path``, for providers whose deployments always have a base."""
        if self.api_base is None:
            raise ValueError(f"deployment {self.name!r} has no api_base")
        return self.api_base + path

    def identity(self) -> str:
        """Stable key of the upstream this deployment reaches, for per-deployment state such
        as circuit breakers. Two tenants' deployments that share a name but not an endpoint or
        a key never share state; the key enters only as a digest."""
        key = self.secret() or ""
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return "|".join((self.name, self.provider, self.api_base or "", self.model, digest))


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts of one call. ``prompt_tokens`` includes ``cached_tokens`` (OpenAI's
    convention; metering splits them with ``split_cached``). ``from_provider`` False: the
    provider reported nothing and the counts are not to be trusted (the gateway counts)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    from_provider: bool

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


NO_USAGE = Usage(from_provider=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderResult:
    """A completed call: the provider's JSON as returned (``body``) and what it cost."""

    body: dict[str, Any] = field(repr=False)
    usage: Usage
    deployment: str
    latency_ms: float
    attempts: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResult(ProviderResult):
    """``POST /chat/completions``; ``body`` is a ``chat.completion`` object."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbedResult(ProviderResult):
    """``POST /embeddings``; ``body`` is the ``list`` of embeddings."""


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One ``chat.completion.chunk`` as the provider sent it, to relay as one SSE event."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnd:
    """The last item of every stream. ``usage`` None: the provider reported none. ``error``:
    the stream broke after chunks were delivered (before that, the stream raises instead)."""

    usage: Usage | None
    finish_reason: str | None
    error: ProviderError | None = None
    attempts: int = 1


StreamItem = StreamChunk | StreamEnd


def url_credentials(url: str) -> str | None:
    """What in ``url`` may be a credential (user info, a query string), or None."""
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        return "user info"
    if parts.query:
        return "a query string"
    return None


def redacted_url(url: str) -> str:
    """``url`` as shown to operators: user info and every query value replaced by ``***``
    (a token may sit in either; the deployments file may hold such a base)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{name}=***" for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
