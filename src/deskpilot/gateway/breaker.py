"""Circuit breakers: stop sending to a deployment that keeps failing, probe it after a pause.

closed --(N consecutive failures, or a failure rate over a window)--> open
open --(cool-down elapsed)--> half-open: one probe call goes through, the rest are refused
half-open --probe succeeds--> closed;  --probe fails--> open (a new cool-down)

A probe that never reports back (its caller leaked it) is presumed lost after another
cool-down, so a breaker cannot stay half-open forever.

Only failures of retryable kinds count (rate limited, server error, timeout, connection): a
client error says nothing about the deployment's health. State lives in memory, per process;
each process finds out on its own, which bounds the cost of a sick deployment without any
shared state on the hot path.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from deskpilot.gateway.errors import CircuitOpenError, ProviderError
from deskpilot.gateway.schemas import Deployment

Clock = Callable[[], float]
_BUCKETS = 10  # the failure-rate window is counted in this many slices: bounded memory at any rate


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    consecutive_failures: int = 5
    window_seconds: float = 60.0
    failure_rate: float = 0.5  # opens when reached with at least min_calls in the window
    min_calls: int = 20
    cooldown_seconds: float = 30.0


@dataclass(slots=True)
class _Bucket:
    start: float
    calls: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one call; ``probe``: the half-open trial call."""

    probe: bool = False


class CircuitBreaker:
    def __init__(
        self, deployment: str, config: BreakerConfig | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.deployment = deployment
        self.config = config or BreakerConfig()
        self._clock = clock
        self._opened_at: float | None = None
        self._probe_since: float | None = None
        self._consecutive = 0
        self._window: deque[_Bucket] = deque()
        self._window_calls = 0
        self._window_failures = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self.config.cooldown_seconds:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    @property
    def quiet(self) -> bool:
        """Closed with no failure on record: forgetting it loses nothing."""
        return self._opened_at is None and self._consecutive == 0 and self._window_failures == 0

    def is_open(self) -> bool:
        """Whether a call now would be refused (open, or half-open with its probe out)."""
        state = self.state
        return state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._probing())

    def acquire(self) -> Ticket:
        """Permission to call, or ``CircuitOpenError``. Every ticket ends in exactly one of
        ``success``, ``failure`` or ``release``."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket()
        if state is BreakerState.HALF_OPEN and not self._probing():
            self._probe_since = self._clock()
            return Ticket(probe=True)
        raise CircuitOpenError(self.deployment)

    def success(self, ticket: Ticket) -> None:
        if ticket.probe:
            self._probe_since = None
        if self._opened_at is not None:  # any success proves the deployment answers again
            self._close()
            return
        self._consecutive = 0
        self._observe(failed=False)

    def failure(self, ticket: Ticket, error: ProviderError) -> None:
        if not error.retryable:
            self.release(ticket)
            return
        if ticket.probe:
            self._probe_since = None
            self._open()
            return
        if self._opened_at is not None:
            return  # a call admitted before the breaker opened; it is open already
        self._consecutive += 1
        self._observe(failed=True)
        if self._consecutive >= self.config.consecutive_failures or self._rate_exceeded():
            self._open()

    def release(self, ticket: Ticket) -> None:
        """The call ended with no verdict on the deployment (cancelled, a client error)."""
        if ticket.probe:
            self._probe_since = None

    def _probing(self) -> bool:
        since = self._probe_since
        return since is not None and self._clock() - since < self.config.cooldown_seconds

    def _observe(self, *, failed: bool) -> None:
        now = self._clock()
        width = self.config.window_seconds / _BUCKETS
        start = now - now % width
        if not self._window or self._window[-1].start < start:
            self._window.append(_Bucket(start))
        bucket = self._window[-1]
        bucket.calls += 1
        bucket.failures += failed
        self._window_calls += 1
        self._window_failures += failed
        while self._window[0].start + width <= now - self.config.window_seconds:
            old = self._window.popleft()
            self._window_calls -= old.calls
            self._window_failures -= old.failures

    def _rate_exceeded(self) -> bool:
        calls = self._window_calls
        return (
            calls >= self.config.min_calls
            and self._window_failures / calls >= self.config.failure_rate
        )

    def _open(self) -> None:
        self._opened_at = self._clock()

    def _close(self) -> None:
        self._opened_at = None
        self._consecutive = 0
        self._window.clear()
        self._window_calls = 0
        self._window_failures = 0


class CircuitBreakers:
    """One breaker per deployment identity (see ``Deployment.identity``); owned by the
    platform. Closed, quiet breakers are dropped first when ``max_entries`` is reached."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._max_entries = max_entries
        self._breakers: dict[str, CircuitBreaker] = {}

    def for_deployment(self, deployment: Deployment) -> CircuitBreaker:
        key = deployment.identity()
        breaker = self._breakers.get(key)
        if breaker is None:
            if len(self._breakers) >= self._max_entries:
                self._evict()
            breaker = CircuitBreaker(deployment.name, self.config, clock=self._clock)
            self._breakers[key] = breaker
        return breaker

    def __len__(self) -> int:
        return len(self._breakers)

    def _evict(self) -> None:
        quiet = [k for k, b in self._breakers.items() if b.quiet]
        for key in quiet[: max(1, len(quiet) // 2)]:
            del self._breakers[key]
        if len(self._breakers) >= self._max_entries:  # all troubled: forget the oldest
            del self._breakers[next(iter(self._breakers))]
