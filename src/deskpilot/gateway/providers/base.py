"""The provider extension point, and the registry the platform builds its providers from.

A provider speaks one upstream API. It receives OpenAI-shaped request bodies and returns
OpenAI-shaped results (translating if its upstream speaks something else), so the gateway
never branches on the provider. Built-in providers register exactly as a third party would::

    registry = ProviderRegistry(BUILTIN_PROVIDERS)
    registry.register("acme", AcmeProvider)
    provider = registry.for_deployment(deployment)   # one instance (one pool) per name
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Protocol

from deskpilot.gateway.schemas import ChatResult, Deployment, EmbedResult, StreamItem


class LLMProvider(Protocol):
    """Errors are ``ProviderError``. ``stream`` raises before its first item; once an item was
    yielded it never raises, and ends with a ``StreamEnd`` that carries any error."""

    async def chat(self, body: Mapping[str, Any], *, deployment: Deployment) -> ChatResult: ...

    def stream(
        self, body: Mapping[str, Any], *, deployment: Deployment
    ) -> AsyncIterator[StreamItem]: ...

    async def embed(self, body: Mapping[str, Any], *, deployment: Deployment) -> EmbedResult: ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[[], LLMProvider]


class ProviderRegistry:
    """Provider name -> factory, and the one live instance per name (built on first use).

    Owned by the platform (built by the app factory), closed with it: instances hold
    connection pools.
    """

    def __init__(self, factories: Iterable[tuple[str, ProviderFactory]] = ()) -> None:
        self._factories: dict[str, ProviderFactory] = {}
        self._instances: dict[str, LLMProvider] = {}
        for name, factory in factories:
            self.register(name, factory)

    def register(self, name: str, factory: ProviderFactory) -> None:
        if name in self._factories:
            raise ValueError(f"a provider named {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def provider(self, name: str) -> LLMProvider:
        instance = self._instances.get(name)
        if instance is None:
            factory = self._factories.get(name)
            if factory is None:
                known = ", ".join(sorted(self._factories)) or "none"
                raise LookupError(f"no provider named {name!r} (registered: {known})")
            instance = self._instances[name] = factory()
        return instance

    def for_deployment(self, deployment: Deployment) -> LLMProvider:
        return self.provider(deployment.provider)

    async def aclose(self) -> None:
        instances, self._instances = list(self._instances.values()), {}
        async with AsyncExitStack() as stack:  # every instance is closed even if one fails
            for instance in instances:
                stack.push_async_callback(instance.aclose)
