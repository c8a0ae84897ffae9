"""HTTP plumbing every HTTP provider shares: one pooled ``httpx.AsyncClient`` per provider
instance, per-deployment timeouts, status and transport errors classified, JSON bodies and
SSE streams read. Providers only build their URL, headers and payload."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.classify import read_status_error, transport_error
from deskpilot.gateway.providers.sse import ServerSentEvent, aiter_events
from deskpilot.gateway.schemas import Deployment

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


class ProviderHttp:
    def __init__(self, limits: PoolLimits | None = None) -> None:
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

    def request(
        self, deployment: Deployment, url: str, payload: dict[str, Any], headers: Mapping[str, str]
    ) -> httpx.Request:
        """A POST of ``payload`` with the deployment's timeouts."""
        timeout = httpx.Timeout(
            connect=deployment.connect_timeout,
            read=deployment.read_timeout,
            write=deployment.read_timeout,
            pool=deployment.connect_timeout,
        )
        return self._client.build_request(
            "POST", url, json=payload, headers=dict(headers), timeout=timeout
        )

    async def post_json(self, request: httpx.Request, deployment: Deployment) -> dict[str, Any]:
        """Send; return the JSON object of a successful response, else raise ProviderError."""
        response = await self._send(request, deployment)
        try:
            if not response.is_success:
                raise await read_status_error(response, deployment)
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        finally:
            await response.aclose()
        return json_object(raw, deployment)

    @asynccontextmanager
    async def events(
        self, request: httpx.Request, deployment: Deployment
    ) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """Send; yield the server-sent events of a successful response (errors before the
        first byte raise ProviderError); the connection is released on exit."""
        response = await self._send(request, deployment)
        try:
            if not response.is_success:
                raise await read_status_error(response, deployment)
            yield aiter_events(response.aiter_lines())
        finally:
            await response.aclose()

    async def _send(self, request: httpx.Request, deployment: Deployment) -> httpx.Response:
        try:
            return await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc


def json_object(raw: bytes, deployment: Deployment) -> dict[str, Any]:
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
