"""The retry policy's waits: full jitter, Retry-After honoured, nothing for the caller's errors."""

from __future__ import annotations

import pytest

from deskpilot.gateway import Deployment, ErrorKind, ProviderError, RetryPolicy


def error(kind: ErrorKind, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, "x", deployment="d", retry_after=retry_after)


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.999])
def test_full_jitter_stays_under_the_capped_exponential(fraction: float) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, random_fraction=lambda: fraction)
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    for retry, ceiling in enumerate(ceilings, start=1):
        assert policy.delay(retry, error(ErrorKind.SERVER_ERROR)) == pytest.approx(
            fraction * ceiling
        )


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=10, random_fraction=lambda: 0.0)
    assert policy.delay(1, error(ErrorKind.RATE_LIMITED, retry_after=4)) == 4
    # waiting longer than the cap is worse than falling back: no retry
    assert policy.delay(1, error(ErrorKind.RATE_LIMITED, retry_after=11)) is None


@pytest.mark.parametrize("kind", [ErrorKind.CLIENT_ERROR, ErrorKind.AUTH])
def test_the_callers_errors_are_not_retried(kind: ErrorKind) -> None:
    assert RetryPolicy().delay(1, error(kind)) is None


def test_a_deployments_own_retry_count_wins() -> None:
    base = {"name": "d", "model": "m", "api_base": "http://u.test"}
    policy = RetryPolicy(max_retries=2)
    assert policy.retries_for(Deployment.model_validate(base)) == 2
    assert policy.retries_for(Deployment.model_validate({**base, "max_retries": 0})) == 0
