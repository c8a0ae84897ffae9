"""Retries with backoff behind a circuit breaker, for calls and for streams.

    policy = RetryPolicy()
    breaker = breakers.for_deployment(deployment)
    result = await call_with_retries(provider, deployment, body, policy=policy, breaker=breaker)
    async with await open_stream(provider, deployment, body, policy=policy, breaker=breaker) as s:
        async for item in s: ...

A stream is retried only until its first item arrives: after that the caller has started
answering its own client, and a second attempt would send a different answer after part of
the first. Every attempt asks the breaker first, so an open breaker refuses without a call.
A stream gives the breaker its verdict when it ends (clean or broken), not at its first chunk:
a deployment that cuts every stream must still trip its breaker.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar

from deskpilot.gateway.breaker import CircuitBreaker, Ticket
from deskpilot.gateway.errors import ProviderError
from deskpilot.gateway.providers.base import LLMProvider
from deskpilot.gateway.schemas import (
    ChatResult,
    Deployment,
    EmbedResult,
    StreamEnd,
    StreamItem,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R", ChatResult, EmbedResult)
Sleep = Callable[[float], Awaitable[None]]


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (a uniform wait up to the capped exponential), or
    the provider's ``Retry-After`` when it gave one. ``sleep`` and ``random_fraction`` are
    injectable so tests observe the waits without taking them."""

    max_retries: int = 2  # a deployment's own max_retries wins
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 20.0
    sleep: Sleep = field(default=_sleep, compare=False, repr=False)
    random_fraction: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def retries_for(self, deployment: Deployment) -> int:
        return self.max_retries if deployment.max_retries is None else deployment.max_retries

    def delay(self, retry: int, error: ProviderError) -> float | None:
        """Seconds to wait before retry number ``retry`` (from 1); None: do not retry."""
        if not error.retryable:
            return None
        if error.retry_after is not None:
            # Sooner than the provider asked would fail again; longer than max_retry_after is
            # worse for the caller than falling back to another deployment now.
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return self.random_fraction() * ceiling


async def _with_retries(
    call: Callable[[Ticket], Awaitable[T]],
    *,
    deployment: Deployment,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
) -> tuple[T, int]:
    """``(result, attempts)``; the last error when retries are exhausted or pointless. A
    failed call is reported to the breaker here; a successful one by ``call`` itself, which
    receives the breaker's ticket."""
    retries = policy.retries_for(deployment)
    attempt = 0
    while True:
        attempt += 1
        ticket = breaker.acquire()
        delay: float | None = None
        try:
            result = await call(ticket)
        except ProviderError as error:
            breaker.failure(ticket, error)
            error.attempts = attempt
            delay = policy.delay(attempt, error) if attempt <= retries else None
            if delay is None or breaker.is_open():
                raise
            log.warning(
                "provider call failed; retrying",
                extra={
                    "deployment": deployment.name,
                    "kind": error.kind.value,
                    "attempt": attempt,
                    "delay_s": round(delay, 3),
                },
            )
        except BaseException:
            breaker.release(ticket)
            raise
        else:
            return result, attempt
        await policy.sleep(delay)


async def call_with_retries(
    provider: LLMProvider,
    deployment: Deployment,
    body: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
) -> ChatResult:
    return await _retrying(provider.chat, deployment, body, policy=policy, breaker=breaker)


async def embed_with_retries(
    provider: LLMProvider,
    deployment: Deployment,
    body: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
) -> EmbedResult:
    return await _retrying(provider.embed, deployment, body, policy=policy, breaker=breaker)


async def _retrying(
    send: Callable[..., Awaitable[R]],
    deployment: Deployment,
    body: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
) -> R:
    async def call(ticket: Ticket) -> R:
        result = await send(body, deployment=deployment)
        breaker.success(ticket)
        return result

    result, attempts = await _with_retries(
        call, deployment=deployment, policy=policy, breaker=breaker
    )
    return replace(result, attempts=attempts)


async def _aclose(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


class OpenedStream:
    """A stream whose first item has arrived. Iterate it to the ``StreamEnd`` (which carries
    ``attempts``), and close it (``async with`` or ``aclose``) to free its connection."""

    def __init__(
        self,
        head: StreamItem,
        rest: AsyncIterator[StreamItem],
        breaker: CircuitBreaker,
        ticket: Ticket,
    ) -> None:
        self._head: StreamItem | None = head
        self._rest = rest
        self._breaker = breaker
        self._ticket: Ticket | None = ticket  # None once the breaker has its verdict
        self.attempts = 1

    def __aiter__(self) -> OpenedStream:
        return self

    async def __anext__(self) -> StreamItem:
        item, self._head = self._head, None
        if item is None:
            try:
                item = await anext(self._rest)
            except BaseException:  # the end without a StreamEnd, or a provider breaking its word
                self._settle(None)
                raise
        if isinstance(item, StreamEnd):
            self._settle(item)
            item = replace(item, attempts=self.attempts)
        return item

    def _settle(self, end: StreamEnd | None) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is None:
            return
        if end is None:
            self._breaker.release(ticket)
        elif end.error is None:
            self._breaker.success(ticket)
        else:
            self._breaker.failure(ticket, end.error)

    async def aclose(self) -> None:
        """Left before its end: no verdict on the deployment."""
        self._settle(None)
        await _aclose(self._rest)

    async def __aenter__(self) -> OpenedStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _open_once(
    provider: LLMProvider,
    deployment: Deployment,
    body: Mapping[str, Any],
    breaker: CircuitBreaker,
    ticket: Ticket,
) -> OpenedStream:
    items = provider.stream(body, deployment=deployment)
    try:
        head = await anext(items)
        if isinstance(head, StreamEnd) and head.error is not None:
            raise head.error  # nothing was delivered: as good as raised before the first item
    except BaseException:
        await _aclose(items)
        raise
    return OpenedStream(head, items, breaker, ticket)


async def open_stream(
    provider: LLMProvider,
    deployment: Deployment,
    body: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
) -> OpenedStream:
    """Retries until the first item arrives; raises the last ``ProviderError`` otherwise."""
    opened, attempts = await _with_retries(
        lambda ticket: _open_once(provider, deployment, body, breaker, ticket),
        deployment=deployment,
        policy=policy,
        breaker=breaker,
    )
    opened.attempts = attempts
    return opened


async def stream_with_retries(
    provider: LLMProvider,
    deployment: Deployment,
    body: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
) -> AsyncIterator[StreamItem]:
    async with await open_stream(
        provider, deployment, body, policy=policy, breaker=breaker
    ) as opened:
        async for item in opened:
            yield item
