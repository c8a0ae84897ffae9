"""No failure the provider layer reports carries the deployment's key or the request body: not
its message, not its repr, not the traceback a log line with ``exc_info`` would print."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from deskpilot.gateway import (
    AllDeploymentsFailedError,
    BreakerConfig,
    CircuitBreaker,
    OpenAICompatProvider,
    ProviderError,
    StreamEnd,
    call_with_retries,
    first_success,
)
from tests.gateway.support import (
    BODY,
    SHORT_TIMEOUT,
    RecordingSleep,
    assert_safe,
    deployment_for,
    policy,
)
from tests.upstream.server import CutStream, Hang, RateLimited, Reset, ServerError, Upstream


async def failure_of(call: Awaitable[object]) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await call
    return raised.value


async def test_no_error_carries_the_key_or_the_body(
    up: Upstream, provider: OpenAICompatProvider
) -> None:
    deployment = deployment_for(up, read_timeout=SHORT_TIMEOUT)
    up.script(RateLimited(), ServerError(500), Reset(), Hang(seconds=30), CutStream())
    errors = [await failure_of(provider.chat(BODY, deployment=deployment)) for _ in range(5)]
    for body in ({"messages": []}, {**BODY, "n": 500}):
        errors.append(await failure_of(provider.chat(body, deployment=deployment)))
    no_key = deployment_for(up, key=None)
    errors.append(await failure_of(provider.chat(BODY, deployment=no_key)))
    up.script(CutStream(after_chunks=1))
    items = [item async for item in provider.stream(BODY, deployment=deployment)]
    assert isinstance(items[-1], StreamEnd)
    assert items[-1].error is not None
    errors.append(items[-1].error)

    assert [e.kind.value for e in errors] == [
        "rate_limited",
        "server_error",
        "connection",
        "timeout",
        "connection",
        "client_error",
        "client_error",
        "auth",
        "connection",
    ]
    for error in errors:
        assert_safe(error)
    assert repr(deployment).count("**********") == 1


async def test_nor_do_the_breaker_and_the_fallback_chain(
    up: Upstream, provider: OpenAICompatProvider
) -> None:
    deployment = deployment_for(up, max_retries=0)
    breaker = CircuitBreaker(deployment.name, BreakerConfig(consecutive_failures=1))
    up.script(ServerError(500))

    async def attempt(_: object) -> object:
        return await call_with_retries(
            provider, deployment, BODY, policy=policy(RecordingSleep()), breaker=breaker
        )

    failures: list[AllDeploymentsFailedError] = []
    for _ in range(2):  # the upstream's failure, then the open breaker's refusal
        try:
            await first_success([deployment], attempt)
        except AllDeploymentsFailedError as error:
            failures.append(error)
    assert [f.tried[0].circuit_open for f in failures] == [False, True]
    assert breaker.is_open()
    for failure in failures:
        assert failure.last is not None
        assert_safe(failure)
        assert_safe(failure.last)
