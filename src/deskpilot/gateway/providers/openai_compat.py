"""Any OpenAI-compatible endpoint (OpenAI, Azure's /openai/v1, vLLM, Ollama, LM Studio, ...).

One pooled ``httpx.AsyncClient`` per provider instance serves every deployment (httpx keeps a
keep-alive pool per origin), HTTP/1.1. Timeouts come from each deployment, per request.
Bodies pass through untouched but for ``model`` (the deployment's) and, when streaming,
``stream``/``stream_options``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.classify import read_status_error, transport_error
from deskpilot.gateway.providers.openai_stream import relay
from deskpilot.gateway.providers.openai_wire import (
    chat_payload,
    embed_payload,
    reported_usage,
    stream_payload,
)
from deskpilot.gateway.providers.sse import aiter_events
from deskpilot.gateway.schemas import ChatResult, Deployment, EmbedResult, StreamItem

USER_AGENT = "deskpilot-gateway"
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Connection pool of one provider instance. A stream holds its connection until it ends,
    so ``max_connections`` bounds the concurrent calls (streams included) across all of this
    provider's deployments; beyond it, calls wait up to the deployment's connect timeout."""

    max_connections: int = 1000
    max_keepalive_connections: int = 200
    keepalive_expiry: float = 30.0


class OpenAICompatProvider:
    def __init__(self, *, limits: PoolLimits | None = None) -> None:
        pool = limits or PoolLimits()
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=pool.max_connections,
                max_keepalive_connections=pool.max_keepalive_connections,
                keepalive_expiry=pool.keepalive_expiry,
            ),
            headers={"user-agent": USER_AGENT},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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
        response = await self._send(request, deployment)
        try:
            if not response.is_success:
                raise await read_status_error(response, deployment)
            events = aiter_events(response.aiter_lines())
            async for item in relay(events, deployment=deployment, pass_usage=caller_wants_usage):
                yield item
        finally:
            await response.aclose()

    async def _post_json(
        self, deployment: Deployment, path: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        request = self._request(deployment, path, payload, accept=JSON_TYPE)
        response = await self._send(request, deployment)
        try:
            if not response.is_success:
                raise await read_status_error(response, deployment)
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        finally:
            await response.aclose()
        return _json_object(raw, deployment)

    def _request(
        self, deployment: Deployment, path: str, payload: dict[str, Any], *, accept: str
    ) -> httpx.Request:
        headers = {**deployment.extra_headers, "accept": accept}
        key = deployment.secret()
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(
            connect=deployment.connect_timeout,
            read=deployment.read_timeout,
            write=deployment.read_timeout,
            pool=deployment.connect_timeout,
        )
        return self._client.build_request(
            "POST", deployment.api_base + path, json=payload, headers=headers, timeout=timeout
        )

    async def _send(self, request: httpx.Request, deployment: Deployment) -> httpx.Response:
        try:
            return await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc


def _json_object(raw: bytes, deployment: Deployment) -> dict[str, Any]:
    try:
        document: Any = json.loads(raw)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ProviderError(
            ErrorKind.SERVER_ERROR,
            "the provider's response is not a JSON object",
            deployment=deployment.name,
        )
    return document
