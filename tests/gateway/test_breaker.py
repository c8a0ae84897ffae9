"""The circuit breaker on its own, with a clock the test moves: no upstream, no waiting."""

from __future__ import annotations

import pytest

from deskpilot.gateway import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    CircuitBreakers,
    CircuitOpenError,
    Deployment,
    ErrorKind,
    ProviderError,
)
from tests.gateway.support import ManualClock

CONFIG = BreakerConfig(
    consecutive_failures=3, window_seconds=60, failure_rate=0.5, min_calls=6, cooldown_seconds=30
)


def failed(kind: ErrorKind = ErrorKind.SERVER_ERROR) -> ProviderError:
    return ProviderError(kind, "failed", deployment="d")


def fail(breaker: CircuitBreaker, times: int = 1, kind: ErrorKind = ErrorKind.SERVER_ERROR) -> None:
    for _ in range(times):
        breaker.failure(breaker.acquire(), failed(kind))


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.success(breaker.acquire())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker("d", CONFIG, clock=clock)


def test_consecutive_failures_open_it(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError, match="circuit open for deployment d"):
        breaker.acquire()


def test_a_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("kind", [ErrorKind.CLIENT_ERROR, ErrorKind.AUTH])
def test_errors_that_are_the_callers_do_not_count(breaker: CircuitBreaker, kind: ErrorKind) -> None:
    fail(breaker, 10, kind)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("kind", [ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.CONNECTION])
def test_every_transient_kind_counts(breaker: CircuitBreaker, kind: ErrorKind) -> None:
    fail(breaker, 3, kind)
    assert breaker.state is BreakerState.OPEN


def test_a_failure_rate_over_the_window_opens_it(breaker: CircuitBreaker) -> None:
    for _ in range(3):  # alternating: never 3 in a row, but half of the calls fail
        succeed(breaker)
        fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_failures_older_than_the_window_are_forgotten(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    for _ in range(2):
        succeed(breaker)
        fail(breaker)
    clock.advance(66)  # the window, plus the slice it is counted in
    succeed(breaker)
    fail(breaker)
    assert breaker.state is BreakerState.CLOSED


def test_after_the_cool_down_one_probe_goes_through(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    fail(breaker, 3)
    clock.advance(29)
    assert breaker.is_open()
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.is_open()
    probe = breaker.acquire()
    assert probe.probe
    assert breaker.is_open()
    with pytest.raises(CircuitOpenError):
        breaker.acquire()  # only one probe at a time
    breaker.success(probe)
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.acquire().probe


def test_a_failed_probe_opens_it_for_another_cool_down(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    fail(breaker, 3)
    clock.advance(30)
    breaker.failure(breaker.acquire(), failed(ErrorKind.TIMEOUT))
    assert breaker.state is BreakerState.OPEN
    clock.advance(29)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_probe_without_verdict_frees_the_slot(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    fail(breaker, 3)
    clock.advance(30)
    breaker.release(breaker.acquire())  # cancelled
    breaker.failure(breaker.acquire(), failed(ErrorKind.CLIENT_ERROR))  # the caller's fault
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire().probe


def test_breakers_are_per_deployment_identity(clock: ManualClock) -> None:
    breakers = CircuitBreakers(CONFIG, clock=clock)
    base = {"name": "gpt", "model": "m", "api_base": "http://u.test/v1"}
    mine = Deployment.model_validate({**base, "api_key": "sk-tenant-a"})
    theirs = Deployment.model_validate({**base, "api_key": "sk-tenant-b"})
    assert breakers.for_deployment(mine) is breakers.for_deployment(mine.model_copy())
    fail(breakers.for_deployment(mine), 3)
    assert breakers.for_deployment(mine).is_open()
    assert not breakers.for_deployment(theirs).is_open()


def test_the_book_of_breakers_is_bounded_and_keeps_troubled_ones(clock: ManualClock) -> None:
    breakers = CircuitBreakers(CONFIG, clock=clock, max_entries=4)
    sick = Deployment(name="sick", model="m", api_base="http://u.test/v1")
    fail(breakers.for_deployment(sick), 3)
    for index in range(10):
        breakers.for_deployment(Deployment(name=f"d{index}", model="m", api_base="http://u.test"))
    assert len(breakers) <= 4
    assert breakers.for_deployment(sick).is_open()


def test_a_probe_that_never_reports_is_presumed_lost(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    fail(breaker, 3)
    clock.advance(30)
    breaker.acquire()  # leaked by its caller
    assert breaker.is_open()
    clock.advance(30)
    assert breaker.acquire().probe
