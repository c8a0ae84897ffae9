"""HTTP plumbing every HTTP provider shares: one pooled aiohttp ``ClientSession`` per provider
instance, per-deployment timeouts, status and transport errors classified, JSON bodies and
SSE streams read. Providers only build their URL, headers and payload.

aiohttp rather than httpx: a POST and its JSON answer cost this process ~0.2 ms of CPU against
~0.9 ms with httpx at one connection, and ~0.2 against ~2.2 ms at 32 (bench/provider_http.py).
What the pool gives: keep-alive per origin, at most ``max_connections`` in use (streams
included), idle connections the server closed dropped before reuse (a POST is never resent
once written: the provider may have acted on it), a connection whose response was not read to
the end (a stream left early, cancelled or abandoned) closed rather than reused.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.classify import (
    TRANSPORT_ERRORS,
    read_status_error,
    transport_error,
)
from deskpilot.gateway.providers.sse import ServerSentEvent, aiter_events, aiter_lines
from deskpilot.gateway.schemas import Deployment

USER_AGENT = "deskpilot-gateway"
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Connection pool of one provider instance. A stream holds its connection until it ends,
    so ``max_connections`` bounds the concurrent calls (streams included) across all of this
    provider's deployments; beyond it, a call waits for a connection, and waiting plus
    connecting may take up to the deployment's connect timeout. An idle connection is kept
    for ``keepalive_expiry`` seconds."""

    max_connections: int = 1000
    keepalive_expiry: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """A POST, ready to send: its body already JSON, the deployment's timeouts attached."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: aiohttp.ClientTimeout


def tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's CAs (``SSL_CERT_FILE``/``SSL_CERT_DIR``
    honoured, so an operator can add a corporate CA); certifi's bundle where the system has
    none (slim containers), as httpx did."""
    context = ssl.create_default_context()
    if not context.cert_store_stats()["x509_ca"]:
        import certifi  # httpx's own dependency, so always installed

        context.load_verify_locations(cafile=certifi.where())
    return context


class ProxyResolver:
    """``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` (any case), read once and resolved once per
    origin. aiohttp's own ``trust_env`` looks them (and ~/.netrc) up in a thread on every
    request, which costs more CPU than the request itself."""

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies()
        self._by_origin: dict[tuple[str, str | None, int | None], URL | None] = {}

    def __call__(self, url: URL) -> URL | None:
        if not self._proxies:
            return None
        origin = (url.scheme, url.host, url.port)
        if origin not in self._by_origin:
            self._by_origin[origin] = self._resolve(url)
        return self._by_origin[origin]

    def _resolve(self, url: URL) -> URL | None:
        proxy = self._proxies.get(url.scheme)
        if proxy is None or url.host is None:
            return None
        return None if urllib.request.proxy_bypass(url.host) else URL(proxy)


class ProviderHttp:
    def __init__(self, limits: PoolLimits | None = None) -> None:
        self._limits = limits or PoolLimits()
        self._proxy = ProxyResolver()
        self._session: aiohttp.ClientSession | None = None  # made in the event loop it serves

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry,
                ssl=tls_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"user-agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),  # nothing carried from one tenant's call
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def request(
        self, deployment: Deployment, url: str, payload: dict[str, Any], headers: Mapping[str, str]
    ) -> ProviderRequest:
        """A POST of ``payload`` with the deployment's timeouts: ``connect`` to get a
        connection (pool wait included), ``read`` the longest silence while the answer is
        awaited or read (between two chunks of a stream, too)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=deployment.connect_timeout,
            sock_connect=deployment.connect_timeout,
            sock_read=deployment.read_timeout,
        )
        return ProviderRequest(url, body.encode(), {"content-type": JSON_TYPE, **headers}, timeout)

    async def post_json(self, request: ProviderRequest, deployment: Deployment) -> dict[str, Any]:
        """Send; return the JSON object of a successful response, else raise ProviderError."""
        response = await self._send(request, deployment)
        try:
            if not 200 <= response.status < 300:
                raise await read_status_error(response, deployment)
            raw = await response.read()
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, deployment) from exc
        finally:
            response.release()
        return json_object(raw, deployment)

    @asynccontextmanager
    async def events(
        self, request: ProviderRequest, deployment: Deployment
    ) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """Send; yield the server-sent events of a successful response (errors before the
        first byte raise ProviderError, transport failures while reading raise it too); the
        connection is released on exit (closed if the stream was not read to its end)."""
        response = await self._send(request, deployment)
        try:
            if not 200 <= response.status < 300:
                raise await read_status_error(response, deployment)
            yield aiter_events(aiter_lines(_chunks(response, deployment)))
        finally:
            response.release()

    async def _send(
        self, request: ProviderRequest, deployment: Deployment
    ) -> aiohttp.ClientResponse:
        url = URL(request.url, encoded=False)
        try:
            return await self._client().post(
                url,
                data=request.body,
                headers=request.headers,
                timeout=request.timeout,
                allow_redirects=False,
                proxy=self._proxy(url),
            )
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, deployment) from exc


async def _chunks(response: aiohttp.ClientResponse, deployment: Deployment) -> AsyncIterator[bytes]:
    """The body as it arrives; a transport failure raised as ProviderError."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except TRANSPORT_ERRORS as exc:
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
