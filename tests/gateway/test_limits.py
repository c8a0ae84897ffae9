"""A deployment's own rpm/tpm: admitted within the minute, refused past it, reset next minute."""

from __future__ import annotations

import pytest

from deskpilot.gateway import Deployment, ErrorKind, ProviderError
from deskpilot.gateway.limits import DeploymentLimits
from tests.gateway.support import ManualClock

BASE = "http://upstream.test/v1"


def test_rpm_refuses_past_the_limit_until_the_next_minute() -> None:
    clock = ManualClock(now=600.0)
    limits = DeploymentLimits(clock=clock)
    deployment = Deployment(name="d", model="m", api_base=BASE, rpm=2)
    limits.admit(deployment)
    limits.admit(deployment)
    with pytest.raises(ProviderError) as refused:
        limits.admit(deployment)
    assert refused.value.kind is ErrorKind.RATE_LIMITED
    assert refused.value.retry_after == 60
    clock.advance(45)
    with pytest.raises(ProviderError) as later:
        limits.admit(deployment)
    assert later.value.retry_after == 15
    clock.advance(15)
    limits.admit(deployment)  # a new minute


def test_tpm_counts_the_tokens_spent() -> None:
    clock = ManualClock(now=600.0)
    limits = DeploymentLimits(clock=clock)
    deployment = Deployment(name="d", model="m", api_base=BASE, tpm=1000)
    limits.admit(deployment)
    limits.spent(deployment, 999)
    limits.admit(deployment)  # 999 < 1000: still admitted
    limits.spent(deployment, 5)
    with pytest.raises(ProviderError):
        limits.admit(deployment)


def test_deployments_without_limits_are_never_counted() -> None:
    limits = DeploymentLimits()
    deployment = Deployment(name="d", model="m", api_base=BASE)
    for _ in range(10_000):
        limits.admit(deployment)
    assert limits._minutes == {}
