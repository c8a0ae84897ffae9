"""The Anthropic provider inside the gateway's machinery: registry, retries, streams behind
the breaker, and a fallback chain that mixes providers. Waits are recorded, never taken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from deskpilot.gateway import (
    BUILTIN_PROVIDERS,
    AnthropicProvider,
    BreakerConfig,
    BreakerState,
    ChatResult,
    CircuitBreaker,
    CircuitBreakers,
    Deployment,
    ErrorKind,
    ProviderRegistry,
    StreamChunk,
    StreamEnd,
    Tried,
    call_with_retries,
    first_success,
    open_stream,
)
from tests.gateway.support import MESSAGES, ManualClock, RecordingSleep, deployment_for, policy
from tests.upstream.server import Ok, RateLimited, ServerError, Upstream

BODY = {"messages": MESSAGES}
CONFIG = BreakerConfig(consecutive_failures=2, cooldown_seconds=30)


def claude(up: Upstream, **overrides: Any) -> Deployment:
    fields = {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_base": up.anthropic_base}
    return deployment_for(up, **{**fields, **overrides})


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    providers = ProviderRegistry(BUILTIN_PROVIDERS)
    try:
        yield providers
    finally:
        await providers.aclose()


async def test_call_with_retries_honours_anthropics_retry_after(
    up: Upstream, registry: ProviderRegistry
) -> None:
    deployment = claude(up)
    provider = registry.for_deployment(deployment)
    assert isinstance(provider, AnthropicProvider)
    sleep = RecordingSleep()
    breaker = CircuitBreaker(deployment.name, CONFIG, clock=ManualClock())
    up.script(RateLimited(retry_after=7), Ok(content="ok"))
    result = await call_with_retries(
        provider, deployment, BODY, policy=policy(sleep), breaker=breaker
    )
    assert result.attempts == 2
    assert sleep.delays == [7.0]
    assert result.body["choices"][0]["message"]["content"] == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_open_stream_retries_an_overload_before_the_first_chunk(
    up: Upstream, registry: ProviderRegistry
) -> None:
    deployment = claude(up)
    sleep = RecordingSleep()
    breaker = CircuitBreaker(deployment.name, CONFIG, clock=ManualClock())
    up.script(ServerError(529), Ok(content="back again"))
    provider = registry.for_deployment(deployment)
    async with await open_stream(
        provider, deployment, BODY, policy=policy(sleep), breaker=breaker
    ) as opened:
        items = [item async for item in opened]
    *chunks, end = items
    text = "".join(
        c.data["choices"][0]["delta"].get("content") or ""
        for c in chunks
        if isinstance(c, StreamChunk)
    )
    assert text == "back again"
    assert isinstance(end, StreamEnd)
    assert (end.error, end.attempts) == (None, 2)
    assert sleep.delays == [0.25]  # jittered backoff: half of the 0.5 s ceiling
    assert len(up.requests) == 2


async def test_an_overloaded_anthropic_deployment_falls_back_and_trips_its_breaker(
    registry: ProviderRegistry,
) -> None:
    breakers = CircuitBreakers(CONFIG, clock=ManualClock())
    sleep = RecordingSleep()
    async with Upstream() as up:
        primary = claude(up, name="claude", max_retries=1)
        secondary = deployment_for(up, name="gpt")  # OpenAI-compatible, same loopback server
        up.script(ServerError(529), ServerError(529))

        async def attempt(deployment: Deployment) -> ChatResult:
            return await call_with_retries(
                registry.for_deployment(deployment),
                deployment,
                BODY,
                policy=policy(sleep),
                breaker=breakers.for_deployment(deployment),
            )

        found = await first_success([primary, secondary], attempt, breakers=breakers)
        assert found.deployment.name == "gpt"
        assert found.tried == (Tried("claude", ErrorKind.SERVER_ERROR),)
        assert breakers.for_deployment(primary).state is BreakerState.OPEN

        found = await first_success([primary, secondary], attempt, breakers=breakers)
        assert found.tried == (Tried("claude", ErrorKind.SERVER_ERROR, circuit_open=True),)
        paths = [r.path for r in up.requests]
        assert paths == ["/anthropic/v1/messages"] * 2 + ["/v1/chat/completions"] * 2
