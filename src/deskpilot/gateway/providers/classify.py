"""HTTP failures of an upstream, classified into ``ProviderError`` kinds.

Statuses: 401/403 auth; 429 rate limited (``Retry-After`` honoured); 408/504 timeout; other
5xx (and unexpected 1xx/3xx) server error; other 4xx client error, carrying the provider's own
message so the caller learns what was wrong with its request. Transport (aiohttp): timeouts
are timeouts; refused, reset and half-sent responses are connection errors; a body that cannot
be decompressed is a server error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError

from deskpilot.gateway.errors import ErrorKind, ProviderError, scrub, truncate
from deskpilot.gateway.providers.sse import ServerSentEvent
from deskpilot.gateway.schemas import Deployment

# What reading an upstream response may raise: aiohttp's errors, and the read timeout (aiohttp's
# own timeout errors are ``TimeoutError`` subclasses).
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
MAX_ERROR_BODY_BYTES = 16 * 1024
PROVIDER_MESSAGE_CHARS = 300

# The ``type``/``code`` an OpenAI-compatible error object uses, for errors that arrive inside a
# 200 stream (no status to go by).
_KIND_OF_CODE = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "insufficient_quota": ErrorKind.RATE_LIMITED,
    "invalid_request_error": ErrorKind.CLIENT_ERROR,
    "invalid_api_key": ErrorKind.AUTH,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
}


def kind_of_status(status: int) -> ErrorKind:
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if 400 <= status < 500:
        return ErrorKind.CLIENT_ERROR
    return ErrorKind.SERVER_ERROR


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait: OpenAI's ``retry-after-ms``, else ``Retry-After`` as delta-seconds or
    an HTTP-date. None when absent or unreadable; never negative."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def provider_message(raw: bytes) -> str:
    """The human part of an error body: ``error.message`` (OpenAI), ``message``, ``detail``,
    else the text itself; whitespace folded."""
    text = raw.decode("utf-8", errors="replace")
    try:
        document: Any = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error", document)
        if isinstance(error, dict):
            found = error.get("message") or error.get("detail") or error.get("msg")
            if found:
                text = str(found)
        elif isinstance(error, str):
            text = error
    return " ".join(text.split())


def status_error(
    status: int, headers: Mapping[str, str], raw: bytes, deployment: Deployment
) -> ProviderError:
    kind = kind_of_status(status)
    said = truncate(scrub(provider_message(raw), deployment.secret()), PROVIDER_MESSAGE_CHARS)
    message = f"the provider answered HTTP {status}"
    if said:
        message += f": {said}"
    retry_after = parse_retry_after(headers) if status in (429, 503) else None
    return ProviderError(
        kind, message, deployment=deployment.name, status=status, retry_after=retry_after
    )


async def read_status_error(
    response: aiohttp.ClientResponse, deployment: Deployment
) -> ProviderError:
    """The error of a non-2xx response, reading at most ``MAX_ERROR_BODY_BYTES`` of its body."""
    raw = bytearray()
    try:
        async for piece in response.content.iter_any():
            raw += piece
            if len(raw) >= MAX_ERROR_BODY_BYTES:
                break
    except TRANSPORT_ERRORS:
        pass  # the status is what matters; the body was a courtesy
    return status_error(response.status, response.headers, bytes(raw), deployment)


def transport_error(exc: BaseException, deployment: Deployment) -> ProviderError:
    """aiohttp's own messages name the failure and the host, never the request's headers or
    body. A pool wait and a connect share the deployment's connect timeout, and aiohttp
    reports both alike."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind, what = ErrorKind.TIMEOUT, "no connection to the provider in time"
    elif isinstance(exc, TimeoutError):
        kind, what = ErrorKind.TIMEOUT, "the provider did not answer in time"
    elif _is_decoding_error(exc):
        kind, what = ErrorKind.SERVER_ERROR, "the provider's response could not be decoded"
    else:
        kind, what = ErrorKind.CONNECTION, "the connection to the provider failed"
    detail = scrub(str(exc), deployment.secret())
    message = f"{what} ({type(exc).__name__}{': ' + detail if detail else ''})"
    error = ProviderError(kind, message, deployment=deployment.name)
    error.__cause__ = exc
    return error


def _is_decoding_error(exc: BaseException) -> bool:
    """A compressed body that does not decompress: aiohttp raises a payload error caused by
    its ``ContentEncodingError``."""
    return isinstance(exc, aiohttp.ClientPayloadError) and isinstance(
        exc.__cause__, ContentEncodingError
    )


def stream_error(payload: Any, deployment: Deployment) -> ProviderError:
    """An error object sent inside a 200 stream (``{"error": {...}}``)."""
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    kind = ErrorKind.SERVER_ERROR
    if isinstance(error, dict):
        for key in ("code", "type"):
            code = error.get(key)
            if isinstance(code, int):
                kind = kind_of_status(code)
                break
            if isinstance(code, str) and code in _KIND_OF_CODE:
                kind = _KIND_OF_CODE[code]
                break
    said = provider_message(json.dumps(payload).encode())
    said = truncate(scrub(said, deployment.secret()), PROVIDER_MESSAGE_CHARS)
    return ProviderError(kind, f"the provider sent an error: {said}", deployment=deployment.name)


def stream_event_json(
    event: ServerSentEvent, deployment: Deployment, *, is_error: Callable[[Any], bool]
) -> dict[str, Any]:
    """One SSE event's JSON object; an error event (by SSE name or ``is_error``) or a
    non-object payload raises ProviderError."""
    try:
        payload: Any = json.loads(event.data)
    except ValueError:
        payload = None
    if event.event == "error" or (isinstance(payload, dict) and is_error(payload)):
        raise stream_error(payload if payload is not None else event.data, deployment)
    if not isinstance(payload, dict):
        raise ProviderError(
            ErrorKind.SERVER_ERROR,
            "the provider sent a stream event that is not a JSON object",
            deployment=deployment.name,
        )
    return payload
