"""Retries, the circuit breaker and fallback against the loopback upstream. Waits go through a
recording sleep and the breaker through a hand-moved clock: assertions are on the delays
requested and on the requests the upstream saw, never on elapsed time."""

from __future__ import annotations

import pytest

from deskpilot.gateway import (
    AllDeploymentsFailedError,
    BreakerConfig,
    BreakerState,
    ChatResult,
    CircuitBreaker,
    CircuitBreakers,
    CircuitOpenError,
    Deployment,
    ErrorKind,
    OpenAICompatProvider,
    OpenedStream,
    ProviderError,
    StreamChunk,
    StreamEnd,
    Tried,
    call_with_retries,
    embed_with_retries,
    first_success,
    open_stream,
    stream_with_retries,
)
from tests.gateway.support import (
    MESSAGES,
    SHORT_TIMEOUT,
    ManualClock,
    RecordingSleep,
    deployment_for,
    policy,
)
from tests.upstream.server import (
    CutStream,
    Hang,
    Ok,
    RateLimited,
    Reset,
    ServerError,
    SlowFirstToken,
    Upstream,
)

BODY = {"messages": MESSAGES}
CONFIG = BreakerConfig(consecutive_failures=3, cooldown_seconds=30)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker("primary", CONFIG, clock=clock)


async def chat(
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
    **options: float,
) -> ChatResult:
    return await call_with_retries(
        provider, deployment, BODY, policy=policy(sleep, **options), breaker=breaker
    )


async def test_a_rate_limit_is_retried_after_the_providers_retry_after(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(RateLimited(retry_after=7), Ok(content="ok"))
    result = await chat(provider, deployment, sleep, breaker)
    assert result.attempts == 2
    assert sleep.delays == [7.0]  # not the jittered backoff (which would be 0.25)
    assert result.body["choices"][0]["message"]["content"] == "ok"
    assert len(up.requests) == 2


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(RateLimited(retry_after=120))
    with pytest.raises(ProviderError) as raised:
        await chat(provider, deployment, sleep, breaker, max_retry_after=20)
    assert raised.value.kind is ErrorKind.RATE_LIMITED
    assert sleep.delays == []
    assert len(up.requests) == 1


async def test_server_errors_are_retried_with_jittered_backoff(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(ServerError(500), ServerError(502), Ok())
    result = await chat(provider, deployment, sleep, breaker, base_delay=0.5)
    assert result.attempts == 3
    assert sleep.delays == [0.25, 0.5]  # half (the injected jitter) of 0.5, then of 1.0
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("fault", [Reset(), Hang(seconds=30)], ids=["reset", "hang"])
async def test_transport_failures_are_retried(
    up: Upstream,
    provider: OpenAICompatProvider,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
    fault: Reset | Hang,
) -> None:
    up.script(fault, Ok())
    result = await chat(provider, deployment_for(up, read_timeout=SHORT_TIMEOUT), sleep, breaker)
    assert result.attempts == 2
    assert len(up.requests) == 2


async def test_a_client_error_is_not_retried(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    with pytest.raises(ProviderError) as raised:
        await call_with_retries(
            provider, deployment, {"messages": []}, policy=policy(sleep), breaker=breaker
        )
    assert raised.value.kind is ErrorKind.CLIENT_ERROR
    assert raised.value.attempts == 1
    assert len(up.requests) == 1
    assert sleep.delays == []


async def test_retries_stop_at_the_deployments_limit_with_the_last_error(
    up: Upstream, provider: OpenAICompatProvider, sleep: RecordingSleep, breaker: CircuitBreaker
) -> None:
    up.script(ServerError(500), ServerError(503), ServerError(500), Ok())
    with pytest.raises(ProviderError) as raised:
        await chat(provider, deployment_for(up, max_retries=1), sleep, breaker)
    assert raised.value.status == 503
    assert raised.value.attempts == 2
    assert len(up.requests) == 2


async def test_embeddings_are_retried_too(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(ServerError(500))
    result = await embed_with_retries(
        provider, deployment, {"input": "vpn"}, policy=policy(sleep), breaker=breaker
    )
    assert result.attempts == 2
    assert result.usage.prompt_tokens == 1


async def test_the_breaker_opens_and_stops_calling_upstream(
    up: Upstream,
    provider: OpenAICompatProvider,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
    clock: ManualClock,
) -> None:
    deployment = deployment_for(up, max_retries=0)
    up.script(*[ServerError(500)] * 3)
    for _ in range(3):
        with pytest.raises(ProviderError):
            await chat(provider, deployment, sleep, breaker)
    assert breaker.state is BreakerState.OPEN
    for _ in range(5):
        with pytest.raises(CircuitOpenError, match="circuit open for deployment primary"):
            await chat(provider, deployment, sleep, breaker)
    assert len(up.requests) == 3  # refused without a call

    clock.advance(30)  # cool-down over: one probe goes through, and its success closes it
    result = await chat(provider, deployment, sleep, breaker)
    assert result.attempts == 1
    assert breaker.state is BreakerState.CLOSED
    assert len(up.requests) == 4


async def test_retries_stop_when_the_breaker_opens_meanwhile(
    up: Upstream, provider: OpenAICompatProvider, sleep: RecordingSleep, breaker: CircuitBreaker
) -> None:
    up.script(*[ServerError(500)] * 5)
    with pytest.raises(ProviderError) as raised:
        await chat(provider, deployment_for(up, max_retries=5), sleep, breaker)
    assert not isinstance(raised.value, CircuitOpenError)  # the upstream's own last error
    assert raised.value.status == 500
    assert len(up.requests) == 3  # the breaker's threshold, not the retry limit


async def test_a_stream_is_retried_before_its_first_chunk(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(ServerError(500), RateLimited(retry_after=2), Ok(content="third time lucky"))
    items = [
        item
        async for item in stream_with_retries(
            provider, deployment, BODY, policy=policy(sleep), breaker=breaker
        )
    ]
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert end.attempts == 3
    assert end.error is None
    assert sleep.delays == [0.25, 2.0]
    text = "".join(
        i.data["choices"][0]["delta"].get("content") or ""
        for i in items
        if isinstance(i, StreamChunk)
    )
    assert text == "third time lucky"


async def test_a_slow_first_token_is_retried(
    up: Upstream, provider: OpenAICompatProvider, sleep: RecordingSleep, breaker: CircuitBreaker
) -> None:
    up.script(SlowFirstToken(seconds=5), Ok())
    deployment = deployment_for(up, read_timeout=SHORT_TIMEOUT)
    async with await open_stream(
        provider, deployment, BODY, policy=policy(sleep), breaker=breaker
    ) as opened:
        items = [item async for item in opened]
    assert opened.attempts == 2
    assert isinstance(items[-1], StreamEnd)
    assert items[-1].attempts == 2


async def test_a_stream_cut_after_chunks_is_not_retried(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(CutStream(after_chunks=2), Ok())
    items = [
        item
        async for item in stream_with_retries(
            provider, deployment, BODY, policy=policy(sleep), breaker=breaker
        )
    ]
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert end.error is not None
    assert end.error.kind is ErrorKind.CONNECTION
    assert len(items) == 4  # role chunk, two content chunks, the end
    assert len(up.requests) == 1
    assert up.pending == 1  # the Ok() was never asked for


async def test_a_cut_stream_counts_against_the_breaker(
    up: Upstream,
    provider: OpenAICompatProvider,
    deployment: Deployment,
    sleep: RecordingSleep,
    breaker: CircuitBreaker,
) -> None:
    up.script(*[CutStream(after_chunks=1)] * 3)
    for _ in range(3):
        async for _item in stream_with_retries(
            provider, deployment, BODY, policy=policy(sleep), breaker=breaker
        ):
            pass
    assert breaker.state is BreakerState.OPEN


async def test_first_success_falls_back_and_reports_the_chain(
    provider: OpenAICompatProvider, sleep: RecordingSleep, clock: ManualClock
) -> None:
    breakers = CircuitBreakers(CONFIG, clock=clock)
    async with Upstream() as east, Upstream() as west:
        first = deployment_for(east, name="east", max_retries=1)
        second = deployment_for(west, name="west", max_retries=1)
        east.script(ServerError(500), ServerError(502))
        west.script(Ok(content="from the west"))

        async def attempt(deployment: Deployment) -> ChatResult:
            return await call_with_retries(
                provider,
                deployment,
                BODY,
                policy=policy(sleep),
                breaker=breakers.for_deployment(deployment),
            )

        found = await first_success([first, second], attempt, breakers=breakers)
        assert found.deployment.name == "west"
        assert found.value.body["choices"][0]["message"]["content"] == "from the west"
        assert found.tried == (Tried("east", ErrorKind.SERVER_ERROR),)
        assert (len(east.requests), len(west.requests)) == (2, 1)


async def test_first_success_skips_open_breakers(
    up: Upstream, provider: OpenAICompatProvider, sleep: RecordingSleep, clock: ManualClock
) -> None:
    breakers = CircuitBreakers(CONFIG, clock=clock)
    sick = deployment_for(up, name="sick", model="gpt-4o")
    healthy = deployment_for(up, name="healthy")
    sick_breaker = breakers.for_deployment(sick)
    for _ in range(3):
        sick_breaker.failure(
            sick_breaker.acquire(), ProviderError(ErrorKind.TIMEOUT, "t", deployment="x")
        )

    async def attempt(deployment: Deployment) -> ChatResult:
        breaker = breakers.for_deployment(deployment)
        return await call_with_retries(
            provider, deployment, BODY, policy=policy(sleep), breaker=breaker
        )

    found = await first_success([sick, healthy], attempt, breakers=breakers)
    assert found.deployment.name == "healthy"
    assert found.tried == (Tried("sick", ErrorKind.SERVER_ERROR, circuit_open=True),)
    assert [r.json["model"] for r in up.requests] == ["gpt-4o-mini"]  # sick was never called

    # Without the book, the attempt itself meets the open breaker, still without a call.
    found = await first_success([sick, healthy], attempt)
    assert found.tried == (Tried("sick", ErrorKind.SERVER_ERROR, circuit_open=True),)
    assert len(up.requests) == 2


async def test_when_every_deployment_fails_the_chain_is_reported(
    up: Upstream, provider: OpenAICompatProvider, sleep: RecordingSleep
) -> None:
    chain = [deployment_for(up, name=n, max_retries=0) for n in ("a", "b", "c")]
    up.script(RateLimited(retry_after=1), Reset(), ServerError(503))
    breakers = CircuitBreakers(CONFIG)

    async def attempt(deployment: Deployment) -> ChatResult:
        breaker = breakers.for_deployment(deployment)
        return await call_with_retries(
            provider, deployment, BODY, policy=policy(sleep), breaker=breaker
        )

    with pytest.raises(AllDeploymentsFailedError) as raised:
        await first_success(chain, attempt, breakers=breakers)
    assert [(t.deployment, t.kind.value) for t in raised.value.tried] == [
        ("a", "rate_limited"),
        ("b", "connection"),
        ("c", "server_error"),
    ]
    assert str(raised.value) == (
        "every deployment failed: a (rate_limited), b (connection), c (server_error)"
    )
    assert raised.value.last is not None
    assert raised.value.last.status == 503


async def test_a_client_error_ends_the_chain_at_once(
    up: Upstream, provider: OpenAICompatProvider, sleep: RecordingSleep
) -> None:
    chain = [deployment_for(up, name="a"), deployment_for(up, name="b")]
    breakers = CircuitBreakers(CONFIG)

    async def attempt(deployment: Deployment) -> ChatResult:
        breaker = breakers.for_deployment(deployment)
        return await call_with_retries(
            provider, deployment, {"messages": []}, policy=policy(sleep), breaker=breaker
        )

    with pytest.raises(ProviderError) as raised:
        await first_success(chain, attempt, breakers=breakers)
    assert raised.value.kind is ErrorKind.CLIENT_ERROR
    assert len(up.requests) == 1


async def test_streams_fall_back_before_their_first_chunk(
    provider: OpenAICompatProvider, sleep: RecordingSleep
) -> None:
    breakers = CircuitBreakers(CONFIG)
    async with Upstream() as east, Upstream() as west:
        chain = [
            deployment_for(east, name="east", max_retries=0),
            deployment_for(west, name="west", max_retries=0),
        ]
        east.script(Reset())
        west.script(Ok(content="streamed from the west"))

        async def attempt(deployment: Deployment) -> OpenedStream:
            breaker = breakers.for_deployment(deployment)
            return await open_stream(
                provider, deployment, BODY, policy=policy(sleep), breaker=breaker
            )

        found = await first_success(chain, attempt, breakers=breakers)
        async with found.value as opened:
            items = [item async for item in opened]
    assert found.deployment.name == "west"
    assert found.tried == (Tried("east", ErrorKind.CONNECTION),)
    assert isinstance(items[-1], StreamEnd)
    assert items[-1].error is None
    assert sum(isinstance(i, StreamChunk) for i in items) > 1
