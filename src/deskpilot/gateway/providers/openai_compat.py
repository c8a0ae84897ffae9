"""Any OpenAI-compatible endpoint (OpenAI, Azure's /openai/v1, vLLM, Ollama, LM Studio, ...).

One pooled HTTP session per provider instance (``ProviderHttp``, aiohttp) serves every
deployment, with a keep-alive pool per origin, HTTP/1.1. Timeouts come from each deployment,
per request.
Bodies pass through untouched but for ``model`` (the deployment's) and, when streaming,
``stream``/``stream_options``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from deskpilot.gateway.providers.http import (
    JSON_TYPE,
    SSE_TYPE,
    PoolLimits,
    ProviderHttp,
    ProviderRequest,
)
from deskpilot.gateway.providers.openai_stream import relay
from deskpilot.gateway.providers.openai_wire import (
    chat_payload,
    embed_payload,
    reported_usage,
    stream_payload,
)
from deskpilot.gateway.schemas import ChatResult, Deployment, EmbedResult, StreamItem


class OpenAICompatProvider:
    def __init__(self, *, limits: PoolLimits | None = None) -> None:
        self._http = ProviderHttp(limits)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(self, body: Mapping[str, Any], *, deployment: Deployment) -> ChatResult:
        started = time.perf_counter()
        document = await self._post_json(
            deployment, "/chat/completions", chat_payload(body, deployment)
        )
        return ChatResult(
            body=document,
            usage=reported_usage(document),
            deployment=deployment.name,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def embed(self, body: Mapping[str, Any], *, deployment: Deployment) -> EmbedResult:
        started = time.perf_counter()
        document = await self._post_json(deployment, "/embeddings", embed_payload(body, deployment))
        return EmbedResult(
            body=document,
            usage=reported_usage(document),
            deployment=deployment.name,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def stream(
        self, body: Mapping[str, Any], *, deployment: Deployment
    ) -> AsyncIterator[StreamItem]:
        payload, caller_wants_usage = stream_payload(body, deployment)
        request = self._request(deployment, "/chat/completions", payload, accept=SSE_TYPE)
        async with self._http.events(request, deployment) as events:
            async for item in relay(events, deployment=deployment, pass_usage=caller_wants_usage):
                yield item

    async def _post_json(
        self, deployment: Deployment, path: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        request = self._request(deployment, path, payload, accept=JSON_TYPE)
        return await self._http.post_json(request, deployment)

    def _request(
        self, deployment: Deployment, path: str, payload: dict[str, Any], *, accept: str
    ) -> ProviderRequest:
        headers = {**deployment.extra_headers, "accept": accept}
        key = deployment.secret()
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return self._http.request(deployment, deployment.url(path), payload, headers)
