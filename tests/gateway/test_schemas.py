"""Deployments, provider errors and the registry: the values the provider layer trades in."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from deskpilot.gateway import (
    BUILTIN_PROVIDERS,
    RETRYABLE_KINDS,
    ChatResult,
    CircuitOpenError,
    Deployment,
    EmbedResult,
    ErrorKind,
    OpenAICompatProvider,
    ProviderError,
    ProviderRegistry,
    StreamItem,
)
from tests.gateway.support import API_KEY


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def make(**overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "name": "d",
        "model": "gpt-4o-mini",
        "api_base": "https://api.example.test/v1/",
        "api_key": API_KEY,
    }
    fields.update(overrides)
    return Deployment.model_validate(fields)


def test_the_key_stays_out_of_repr_str_and_identity() -> None:
    deployment = make(extra_headers={"OpenAI-Organization": "org-secret"})
    for text in (repr(deployment), str(deployment), deployment.identity()):
        assert API_KEY not in text
        assert "org-secret" not in text
    assert deployment.secret() == API_KEY


def test_the_api_base_is_normalised_and_must_be_http() -> None:
    assert make().api_base == "https://api.example.test/v1"
    with pytest.raises(ValidationError, match="http"):
        make(api_base="ftp://example.test")


def test_only_litellm_deployments_may_leave_out_the_api_base() -> None:
    tail = make(provider="litellm", model="bedrock/anthropic.claude-3-haiku", api_base=None)
    assert tail.api_base is None
    assert tail.identity() == f"d|litellm||bedrock/anthropic.claude-3-haiku|{digest(API_KEY)}"
    with pytest.raises(ValueError, match="no api_base"):
        tail.url("/chat/completions")
    assert make(provider="litellm", api_base="http://x.test/v1/").api_base == "http://x.test/v1"
    for provider in ("openai", "anthropic", "echo"):
        with pytest.raises(ValidationError, match="api_base") as raised:
            make(provider=provider, api_base=None)
        assert "required, except for provider 'litellm'" in str(raised.value)
    assert (
        make().identity() == f"d|openai|https://api.example.test/v1|gpt-4o-mini|{digest(API_KEY)}"
    )
    assert make().url("/embeddings") == "https://api.example.test/v1/embeddings"


def test_extra_headers_cannot_replace_the_providers_own() -> None:
    with pytest.raises(ValidationError, match="Authorization"):
        make(extra_headers={"Authorization": "Basic eA=="})
    headers = make(extra_headers={"x-team": "itsm"}).extra_headers
    with pytest.raises(TypeError):
        headers["x-team"] = "other"  # type: ignore[index]  # proving it is read-only


def test_deployments_are_frozen() -> None:
    with pytest.raises(ValidationError):
        make().model = "other"  # type: ignore[misc]  # proving it is frozen


def test_identity_separates_same_named_deployments_of_different_upstreams() -> None:
    base = make()
    assert base.identity() == make().identity()
    assert base.identity() != make(api_key="sk-another-tenant-key").identity()
    assert base.identity() != make(api_base="https://other.test/v1").identity()


def test_only_transient_kinds_are_retryable() -> None:
    assert {k.value for k in RETRYABLE_KINDS} == {
        "rate_limited",
        "server_error",
        "timeout",
        "connection",
    }
    for kind in ErrorKind:
        error = ProviderError(kind, "x", deployment="d")
        assert error.retryable is (kind in RETRYABLE_KINDS)


def test_provider_error_text_is_safe_and_informative() -> None:
    error = ProviderError(
        ErrorKind.RATE_LIMITED,
        f"rejected Authorization: Bearer {API_KEY}",
        deployment="d",
        status=429,
        retry_after=2.0,
    )
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert repr(error).startswith("ProviderError(kind='rate_limited', deployment='d', status=429")
    assert str(CircuitOpenError("eu-gpt")) == "circuit open for deployment eu-gpt"
    assert CircuitOpenError("eu-gpt").kind is ErrorKind.SERVER_ERROR


class EchoProvider:
    """A third-party provider: registers exactly as the built-in one does."""

    def __init__(self) -> None:
        self.closed = False

    async def chat(self, body: Mapping[str, Any], *, deployment: Deployment) -> ChatResult:
        raise NotImplementedError

    async def stream(
        self, body: Mapping[str, Any], *, deployment: Deployment
    ) -> AsyncIterator[StreamItem]:
        raise NotImplementedError
        yield  # an async generator, as a real provider's stream is

    async def embed(self, body: Mapping[str, Any], *, deployment: Deployment) -> EmbedResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True


async def test_the_registry_builds_one_instance_per_provider_and_closes_them() -> None:
    registry = ProviderRegistry(BUILTIN_PROVIDERS)
    registry.register("echo", EchoProvider)
    assert registry.names() == ("openai", "anthropic", "litellm", "echo")
    echo = registry.provider("echo")
    assert registry.for_deployment(make(provider="echo")) is echo
    assert isinstance(registry.provider("openai"), OpenAICompatProvider)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("echo", EchoProvider)
    with pytest.raises(LookupError, match="registered: anthropic, echo, litellm, openai"):
        registry.provider("bedrock")
    await registry.aclose()
    assert isinstance(echo, EchoProvider)
    assert echo.closed
    assert registry.provider("echo") is not echo  # closed instances are never handed out
