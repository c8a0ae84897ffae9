"""Anthropic's Messages API behind the gateway's OpenAI shape.

Requests are translated by ``anthropic_wire`` (what maps, what is refused), responses by
``anthropic_reply`` and streams by ``anthropic_stream``. Deployments: ``api_base`` is the
host (``https://api.anthropic.com``), the key goes in ``x-api-key``; ``extra_headers`` may
add ``anthropic-beta`` or override ``anthropic-version``. Anthropic has no embeddings
endpoint. HTTP failures are classified as for any provider (``classify``): 529 overloaded
is a retryable server error, 429 carries ``retry-after``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.anthropic_messages import UnsupportedRequestError
from deskpilot.gateway.providers.anthropic_reply import completion
from deskpilot.gateway.providers.anthropic_stream import translate
from deskpilot.gateway.providers.anthropic_wire import (
    ANTHROPIC_VERSION,
    messages_payload,
)
from deskpilot.gateway.providers.http import (
    JSON_TYPE,
    SSE_TYPE,
    PoolLimits,
    ProviderHttp,
    ProviderRequest,
)
from deskpilot.gateway.schemas import NO_USAGE, ChatResult, Deployment, EmbedResult, StreamItem

MESSAGES_PATH = "/v1/messages"


class AnthropicProvider:
    """One pooled HTTP session (``ProviderHttp``) for every Anthropic deployment, as the OpenAI
    provider has (see ``PoolLimits``)."""

    def __init__(self, *, limits: PoolLimits | None = None) -> None:
        self._http = ProviderHttp(limits)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(self, body: Mapping[str, Any], *, deployment: Deployment) -> ChatResult:
        started = time.perf_counter()
        payload = _payload(body, deployment, stream=False)
        request = self._request(deployment, payload, accept=JSON_TYPE)
        reply = await self._http.post_json(request, deployment)
        document, usage = completion(reply, model=deployment.model)
        return ChatResult(
            body=document,
            usage=usage or NO_USAGE,
            deployment=deployment.name,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def embed(self, body: Mapping[str, Any], *, deployment: Deployment) -> EmbedResult:
        raise ProviderError(
            ErrorKind.CLIENT_ERROR,
            "this provider has no embeddings endpoint",
            deployment=deployment.name,
        )

    async def stream(
        self, body: Mapping[str, Any], *, deployment: Deployment
    ) -> AsyncIterator[StreamItem]:
        options = body.get("stream_options")
        caller_wants_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        payload = _payload(body, deployment, stream=True)
        request = self._request(deployment, payload, accept=SSE_TYPE)
        async with self._http.events(request, deployment) as events:
            async for item in translate(
                events, deployment=deployment, pass_usage=caller_wants_usage
            ):
                yield item

    def _request(
        self, deployment: Deployment, payload: dict[str, Any], *, accept: str
    ) -> ProviderRequest:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        headers.update((name.lower(), value) for name, value in deployment.extra_headers.items())
        headers["accept"] = accept
        key = deployment.secret()
        if key is not None:
            headers["x-api-key"] = key
        return self._http.request(deployment, deployment.url(MESSAGES_PATH), payload, headers)


def _payload(body: Mapping[str, Any], deployment: Deployment, *, stream: bool) -> dict[str, Any]:
    try:
        return messages_payload(body, model=deployment.model, stream=stream)
    except UnsupportedRequestError as exc:
        raise ProviderError(ErrorKind.CLIENT_ERROR, str(exc), deployment=deployment.name) from None
