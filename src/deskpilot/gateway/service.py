"""The gateway's request path, the same for HTTP and Python::

    served = await platform.gateway.chat(tenant=ctx, body={"model": "gpt-4o", "messages": [...]})
    async with await platform.gateway.stream(tenant=ctx, body={...}) as stream:
        async for sse_bytes in stream: ...

Each call: check the ``llm`` scope and the body → route the alias for this tenant → count the
prompt offline and reserve quota for it plus the output cap (and the estimated spend) → call
the chain's deployments with retries, breakers and fallbacks → record the usage durably
(provider-reported tokens, or counted ones when the provider reported none) → settle the
reservation → answer. Every refusal happens before any provider is called, and nothing is
billed for work that did not happen: a failed call releases its reservation.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import FieldError
from deskpilot.gateway import tokens
from deskpilot.gateway.breaker import CircuitBreakers
from deskpilot.gateway.errors import ProviderError
from deskpilot.gateway.errors_http import UpstreamFailed, UpstreamRefused
from deskpilot.gateway.fallback import (
    AllDeploymentsFailedError,
    FallbackSuccess,
    Tried,
    describe,
    first_success,
)
from deskpilot.gateway.limits import DeploymentLimits, Limits
from deskpilot.gateway.providers.base import ProviderRegistry
from deskpilot.gateway.requests import ChatRequest, EmbeddingsRequest, InvalidRequest
from deskpilot.gateway.resilience import (
    RetryPolicy,
    call_with_retries,
    embed_with_retries,
    open_stream,
)
from deskpilot.gateway.routing import Catalogue, Route, Router, gateway_section
from deskpilot.gateway.schemas import Deployment, ProviderResult, Usage
from deskpilot.gateway.streaming import GatewayStream, StreamMeter, completion_text
from deskpilot.metered import MeteredFactory, MeteredWork
from deskpilot.metering import (
    Outcome,
    PriceTable,
    RecordedUsage,
    UsageEvent,
    markup_of,
    split_cached,
)
from deskpilot.quotas import Dimension

log = logging.getLogger(__name__)

COMPONENT = "gateway"
DEPLOYMENT_HEADER = "x-deskpilot-deployment"
ALIAS_HEADER = "x-deskpilot-model-alias"
ATTEMPTS_HEADER = "x-deskpilot-attempts"
FALLBACK_HEADER = "x-deskpilot-fallbacks"


OwnKeys = Callable[[TenantContext], Awaitable[Mapping[str, SecretStr]]]


async def no_own_keys(tenant: TenantContext) -> Mapping[str, SecretStr]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """A complete answer: the provider's OpenAI-shaped ``body`` and where it came from."""

    body: dict[str, Any] = field(repr=False)
    alias: str
    deployment: str
    attempts: int
    tried: tuple[Tried, ...]
    usage: Usage
    recorded: RecordedUsage
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Prepared:
    route: Route
    prompt_tokens: int
    reserve: dict[Dimension, Decimal | int]


class Gateway:
    """The LLM gateway of one process: providers (one pool each), breakers, the retry policy
    and the router over the current catalogue. Owned by the platform and closed with it."""

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        prices: PriceTable,
        metered: MeteredFactory,
        providers: ProviderRegistry,
        policy: RetryPolicy | None = None,
        breakers: CircuitBreakers | None = None,
        own_keys: OwnKeys = no_own_keys,
        limits: Limits | None = None,
    ) -> None:
        self.router = Router(catalogue)
        self.prices = prices
        self.providers = providers
        self.policy = policy or RetryPolicy()
        self.breakers = breakers or CircuitBreakers()
        self.limits: Limits = limits or DeploymentLimits()
        self._metered = metered
        self._own_keys = own_keys
        self._background: set[asyncio.Task[None]] = set()

    @property
    def catalogue(self) -> Catalogue:
        return self.router.catalogue

    def use_catalogue(self, catalogue: Catalogue) -> None:
        """Serve from ``catalogue`` from now on (requests in flight keep their route)."""
        self.router = Router(catalogue)

    def warm_up(self) -> None:
        """Load the tokenizer encodings the catalogue's models use, in a worker thread."""
        names = {
            tokens.encoding_name(d.provider, d.model)
            for deployments in self.catalogue.deployments.values()
            for d in deployments
        }
        if names:
            self.spawn(asyncio.to_thread(tokens.warm, names))

    async def close(self) -> None:
        """Wait for usage still being recorded (streams the client left), close the pools."""
        await self.drain()
        await self.providers.aclose()

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task the gateway waits for on close; its failure is logged."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("gateway background work failed", exc_info=error)

    # ---- the Python API -------------------------------------------------------------------

    def models(self, *, tenant: TenantContext) -> list[dict[str, Any]]:
        """``GET /v1/models``: the aliases this tenant may ask for."""
        tenant.require(Scope.LLM)
        return [
            {"id": alias, "object": "model", "created": 0, "owned_by": "deskpilot"}
            for alias in self.router.visible_aliases(tenant)
        ]

    async def chat(
        self, *, tenant: TenantContext, body: Any, request_id: str | None = None
    ) -> Served:
        """A non-streamed chat completion. ``request_id`` must be unique per call (it is the
        usage event's idempotency key); None: one is generated."""
        started = time.perf_counter()
        tenant.require(Scope.LLM)
        request = ChatRequest(body)
        if request.stream:
            raise InvalidRequest(
                "stream: true is served by Gateway.stream", (FieldError("stream", "use stream()"),)
            )
        prepared = await self._prepare_chat(tenant, request)
        rid = request_id or secrets.token_hex(16)
        work = self._metered(tenant=tenant, request_id=rid, reserve=prepared.reserve)
        async with self._holding(work):
            found = await self._first_success(
                tenant, prepared.route, call_with_retries, request.body
            )
            result = found.value
            usage = result.usage
            if not usage.from_provider:
                usage = _counted_chat(result.body, prepared.prompt_tokens, found.deployment)
            recorded = await work.record(
                self._event(
                    tenant,
                    rid,
                    "chat",
                    prepared.route,
                    found.deployment,
                    usage,
                    started,
                ),
                final=True,
            )
        return self._served(found, prepared.route, usage, recorded, work)

    async def stream(
        self, *, tenant: TenantContext, body: Any, request_id: str | None = None
    ) -> GatewayStream:
        """A streamed chat completion: an async iterator of SSE-encoded bytes (close it, or use
        ``async with``). Refusals and failures before the first chunk raise here; after it,
        an upstream failure ends the stream with an ``error`` event. Usage is recorded when
        the stream ends, also when the caller leaves early (billed for what was generated)."""
        started = time.perf_counter()
        tenant.require(Scope.LLM)
        request = ChatRequest(body)
        prepared = await self._prepare_chat(tenant, request)
        rid = request_id or secrets.token_hex(16)
        work = self._metered(
            tenant=tenant, request_id=rid, reserve=prepared.reserve, lease_seconds=900
        )
        await work.__aenter__()
        try:
            found = await self._first_success(tenant, prepared.route, open_stream, request.body)
        except BaseException as exc:
            await work.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        deployment = found.deployment
        meter = StreamMeter(
            record=lambda usage, outcome: work.record(
                self._event(
                    tenant,
                    rid,
                    "chat",
                    prepared.route,
                    deployment,
                    usage,
                    started,
                    outcome=outcome,
                ),
                final=True,
            ),
            finish=lambda: work.__aexit__(None, None, None),
            prompt_tokens=prepared.prompt_tokens,
            provider=deployment.provider,
            model=deployment.model,
        )
        headers = self._headers(found, prepared.route, found.value.attempts, work)
        return GatewayStream(found.value, meter, headers=headers, spawn=self.spawn)

    async def embeddings(
        self, *, tenant: TenantContext, body: Any, request_id: str | None = None
    ) -> Served:
        started = time.perf_counter()
        tenant.require(Scope.LLM)
        request = EmbeddingsRequest(body)
        section = gateway_section(tenant)
        own = await self._own_keys(tenant) if section.byo_keys != "off" else {}
        route = self.router.route(
            requested=request.model, tenant=tenant, own_keys=own, section=section
        )
        first = route.chain[0]
        counted = tokens.count_embedding_input(
            request.input, provider=first.provider, model=first.model
        )
        reserve = self._reserve(tenant, route, counted, 0, embedding=True)
        rid = request_id or secrets.token_hex(16)
        work = self._metered(tenant=tenant, request_id=rid, reserve=reserve)
        async with self._holding(work):
            found = await self._first_success(tenant, route, embed_with_retries, request.body)
            usage = found.value.usage
            if not usage.from_provider:
                usage = Usage(prompt_tokens=counted, from_provider=False)
            recorded = await work.record(
                self._event(tenant, rid, "embed", route, found.deployment, usage, started),
                final=True,
            )
        return self._served(found, route, usage, recorded, work)

    # ---- the steps ------------------------------------------------------------------------

    @asynccontextmanager
    async def _holding(self, work: MeteredWork) -> AsyncIterator[MeteredWork]:
        """``work`` reserved for the block. A failure gives the holds back before the refusal
        goes out; after success the usage is durable and its final record settled the holds
        (after the commit, on the ledger writer): the answer waits for neither."""
        await work.__aenter__()
        try:
            yield work
        except BaseException as exc:
            await work.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        if not work.settled:  # (every path here records with final=True)
            self.spawn(work.__aexit__(None, None, None))

    async def _prepare_chat(self, tenant: TenantContext, request: ChatRequest) -> _Prepared:
        section = gateway_section(tenant)
        output = request.max_output
        if output is not None and output * request.n > section.max_tokens_limit:
            param = (
                "max_completion_tokens" if "max_completion_tokens" in request.body else "max_tokens"
            )
            raise InvalidRequest(
                f"{param}: {output} x n={request.n} output tokens exceed this tenant's limit "
                f"of {section.max_tokens_limit}",
                (FieldError(param, f"at most {section.max_tokens_limit // request.n}"),),
            )
        if output is None:
            # Bound what can be generated by what is reserved.
            output = min(section.default_max_tokens, section.max_tokens_limit // request.n) or 1
            request.body["max_tokens"] = output
        own = await self._own_keys(tenant) if section.byo_keys != "off" else {}
        route = self.router.route(
            requested=request.model, tenant=tenant, own_keys=own, section=section
        )
        first = route.chain[0]
        prompt = tokens.count_chat(
            request.messages, provider=first.provider, model=first.model, tools=request.tools
        )
        reserve = self._reserve(tenant, route, prompt, output * request.n)
        return _Prepared(route, prompt, reserve)

    def _reserve(
        self,
        tenant: TenantContext,
        route: Route,
        prompt_tokens: int,
        output_tokens: int,
        *,
        embedding: bool = False,
    ) -> dict[Dimension, Decimal | int]:
        """One request, its tokens at most, and their estimated billed cost at the price of the
        dearest deployment the chain may fall back to (zero where the tenant's own key pays,
        or the model is unpriced), so that a fallback to a dearer model stays within what was
        reserved before the call."""
        markup = markup_of(tenant.section("billing"))
        spend = max(
            (
                self.prices.estimate(
                    deployment.provider,
                    deployment.model,
                    input_tokens=prompt_tokens,
                    output_tokens=output_tokens,
                    markup_percent=markup,
                    embedding=embedding,
                )
                for deployment in route.chain
                if deployment.name not in route.own_key
            ),
            default=Decimal(0),
        )
        total = prompt_tokens + output_tokens
        return {
            Dimension.REQUESTS_PER_MINUTE: 1,
            Dimension.TOKENS_PER_MINUTE: total,
            Dimension.TOKENS_PER_PERIOD: total,
            Dimension.SPEND_PER_PERIOD: spend,
        }

    async def _first_success(
        self,
        tenant: TenantContext,
        route: Route,
        call: Callable[..., Awaitable[Any]],
        body: Mapping[str, Any],
    ) -> FallbackSuccess[Any]:
        """``call`` (``call_with_retries``, ``open_stream`` or ``embed_with_retries``) on each
        deployment of the chain, with its provider, retry policy and breaker, until one
        answers."""

        async def admitted(deployment: Deployment) -> Any:
            # over its own rpm/tpm: skipped, not called
            await self.limits.admit(deployment, owner=_owner(tenant, route, deployment))
            return await call(
                self.providers.for_deployment(deployment),
                deployment,
                body,
                policy=self.policy,
                breaker=self.breakers.for_deployment(deployment),
            )

        try:
            return await first_success(route.chain, admitted, breakers=self.breakers)
        except AllDeploymentsFailedError as exc:
            raise UpstreamFailed(
                f"every deployment for {route.requested!r} failed: {describe(exc.tried)}",
                exc.tried,
            ) from None
        except ProviderError as exc:
            raise UpstreamRefused(exc) from None

    def _event(
        self,
        tenant: TenantContext,
        request_id: str,
        operation: str,
        route: Route,
        deployment: Deployment,
        usage: Usage,
        started: float,
        *,
        outcome: str = "ok",
    ) -> UsageEvent:
        if deployment.tpm is not None:  # the deployment's own token budget of this minute
            owner = _owner(tenant, route, deployment)
            self.spawn(self.limits.spent(deployment, usage.total_tokens, owner=owner))
        input_tokens, cached = split_cached(usage.prompt_tokens, usage.cached_tokens)
        return UsageEvent(
            component=COMPONENT,
            operation=operation,
            request_id=request_id,
            model_alias=route.requested,
            provider=deployment.provider,
            provider_model=deployment.model,
            input_tokens=input_tokens,
            cached_tokens=cached,
            output_tokens=usage.completion_tokens,
            # The tenant's own key: the provider bills the tenant directly.
            provider_cost=Decimal(0) if _owner(tenant, route, deployment) else None,
            latency_ms=Decimal(round((time.perf_counter() - started) * 1000, 3)),
            outcome=Outcome(outcome),
        )

    def _headers(
        self, found: FallbackSuccess[Any], route: Route, attempts: int, work: MeteredWork
    ) -> dict[str, str]:
        headers = {
            DEPLOYMENT_HEADER: found.deployment.name,
            ALIAS_HEADER: route.alias_of(found.deployment),
            ATTEMPTS_HEADER: str(attempts),
            **work.warning_headers(),
        }
        if found.tried:
            headers[FALLBACK_HEADER] = describe(found.tried)
        return headers

    def _served(
        self,
        found: FallbackSuccess[Any],
        route: Route,
        usage: Usage,
        recorded: RecordedUsage,
        work: MeteredWork,
    ) -> Served:
        result: ProviderResult = found.value
        return Served(
            body=result.body,
            alias=route.alias_of(found.deployment),
            deployment=found.deployment.name,
            attempts=result.attempts,
            tried=found.tried,
            usage=usage,
            recorded=recorded,
            headers=self._headers(found, route, result.attempts, work),
        )


def _counted_chat(body: Mapping[str, Any], prompt_tokens: int, deployment: Deployment) -> Usage:
    """Usage of a complete answer whose provider reported none: the prompt as counted before
    the call, the completion counted from the choices."""
    text = completion_text(body.get("choices"))
    completion = tokens.count_text(text, provider=deployment.provider, model=deployment.model)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion, from_provider=False)


def _owner(tenant: TenantContext, route: Route, deployment: Deployment) -> TenantContext | None:
    """The tenant whose own provider key (and account) ``deployment`` runs on, if any."""
    return tenant if deployment.name in route.own_key else None
