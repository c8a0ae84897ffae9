"""The walk along a fallback chain: the first deployment that answers wins.

Which chain a tenant's request takes is the router's business; this only walks one, skipping
deployments whose breaker is open, and keeps the record of what was tried for the gateway's
502 when nothing answered::

    found = await first_success(chain, lambda d: call_with_retries(...), breakers=breakers)
    found.value, found.deployment, found.tried
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from deskpilot.gateway.breaker import CircuitBreakers
from deskpilot.gateway.errors import RETRYABLE_KINDS, CircuitOpenError, ErrorKind, ProviderError
from deskpilot.gateway.schemas import Deployment

T = TypeVar("T")

# A deployment with a bad key is that deployment's problem: the next one may well answer.
FALLBACK_KINDS = RETRYABLE_KINDS | {ErrorKind.AUTH}


@dataclass(frozen=True, slots=True)
class Tried:
    """One deployment of a fallback chain that did not answer, and why."""

    deployment: str
    kind: ErrorKind
    circuit_open: bool = False


@dataclass(frozen=True, slots=True)
class FallbackSuccess(Generic[T]):
    value: T
    deployment: Deployment
    tried: tuple[Tried, ...]  # the deployments before it that failed or were skipped


def describe(tried: Sequence[Tried]) -> str:
    """``primary (rate_limited), eu-2 (circuit open)``: a chain as the gateway reports it."""
    return ", ".join(
        f"{t.deployment} ({'circuit open' if t.circuit_open else t.kind.value})" for t in tried
    )


class AllDeploymentsFailedError(Exception):
    """Every deployment of the chain failed; ``tried`` is the chain the gateway reports."""

    def __init__(self, tried: Sequence[Tried], last: ProviderError | None) -> None:
        self.tried = tuple(tried)
        self.last = last
        super().__init__(f"every deployment failed: {describe(tried)}")


async def first_success(
    deployments: Sequence[Deployment],
    attempt: Callable[[Deployment], Awaitable[T]],
    *,
    breakers: CircuitBreakers | None = None,
    fallback_on: frozenset[ErrorKind] = FALLBACK_KINDS,
) -> FallbackSuccess[T]:
    """Try ``attempt`` on each deployment in order, skipping those whose breaker is open.

    An error of a kind outside ``fallback_on`` (by default: a client error, which the next
    deployment would refuse as well) is raised at once, for the caller to answer with.
    """
    if not deployments:
        raise ValueError("a fallback chain needs at least one deployment")
    tried: list[Tried] = []
    last: ProviderError | None = None
    for deployment in deployments:
        if breakers is not None and breakers.for_deployment(deployment).is_open():
            tried.append(Tried(deployment.name, ErrorKind.SERVER_ERROR, circuit_open=True))
            continue
        try:
            value = await attempt(deployment)
        except ProviderError as error:
            if error.kind not in fallback_on:
                raise
            tried.append(Tried(deployment.name, error.kind, isinstance(error, CircuitOpenError)))
            last = error
            continue
        return FallbackSuccess(value, deployment, tuple(tried))
    raise AllDeploymentsFailedError(tried, last)
