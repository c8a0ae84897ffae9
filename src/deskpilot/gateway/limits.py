"""A deployment's own rate limits (``rpm``/``tpm`` in the deployments file).

A provider account has limits of its own; sending past them only earns 429s. Before a
deployment is called the gateway asks ``admit``: over its requests or tokens for the current
minute, the deployment is skipped like a rate-limited one (the next deployment of the alias, or
a fallback, serves) without a call and without touching its circuit breaker. Tokens are
counted after the call from the usage recorded.

Counted per process, in fixed UTC minutes: with N worker processes each admits up to the
limit, so set ``rpm``/``tpm`` per process (the account's limit divided by the processes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.schemas import Deployment

Clock = Callable[[], float]


@dataclass(slots=True)
class _Minute:
    start: float
    requests: int = 0
    tokens: int = 0


class DeploymentLimits:
    def __init__(self, *, clock: Clock = time.time, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._minutes: dict[str, _Minute] = {}

    def _current(self, deployment: Deployment) -> _Minute:
        start = self._clock() // 60 * 60
        key = deployment.identity()
        minute = self._minutes.get(key)
        if minute is None or minute.start != start:
            if minute is None and len(self._minutes) >= self._max_entries:
                self._minutes.clear()  # stale minutes of many deployments: start over
            minute = self._minutes[key] = _Minute(start)
        return minute

    def admit(self, deployment: Deployment) -> None:
        """Count one request, or raise a rate-limited ``ProviderError`` (no call was made)."""
        if deployment.rpm is None and deployment.tpm is None:
            return
        minute = self._current(deployment)
        if deployment.rpm is not None and minute.requests >= deployment.rpm:
            raise self._refusal(deployment, f"its rpm limit ({deployment.rpm})", minute)
        if deployment.tpm is not None and minute.tokens >= deployment.tpm:
            raise self._refusal(deployment, f"its tpm limit ({deployment.tpm})", minute)
        minute.requests += 1

    def spent(self, deployment: Deployment, tokens: int) -> None:
        if deployment.tpm is not None:
            self._current(deployment).tokens += tokens

    def _refusal(self, deployment: Deployment, limit: str, minute: _Minute) -> ProviderError:
        return ProviderError(
            ErrorKind.RATE_LIMITED,
            f"deployment {deployment.name} reached {limit} for this minute; not called",
            deployment=deployment.name,
            retry_after=max(0.0, minute.start + 60 - self._clock()),
        )
