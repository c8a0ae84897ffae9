"""LiteLLM's exceptions, classified into ``ProviderError`` kinds.

LiteLLM raises its own exception classes (OpenAI's, subclassed) with a ``status_code``, for
every provider alike. A clear 4xx is taken at its word: 401/403 auth, 429 rate limited, other
4xx (context window exceeded, unsupported parameter, content policy, unknown model) client
error. Otherwise the chain of causes decides: a timeout anywhere in it is a timeout, a refused or
reset connection a connection error (LiteLLM reports both as HTTP 500 or 408 it made up);
what is left is a server error.

Messages are built from the kind, LiteLLM's class name and the status, never from LiteLLM's own
text: that text quotes the provider's answer, which may echo the request, and LiteLLM's debug
information, which may name credentials. The error is returned, not raised, so that the caller
raises it outside the ``except`` block and LiteLLM's exception is not even its context.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.classify import kind_of_status, parse_retry_after
from deskpilot.gateway.schemas import Deployment

_MAX_CAUSES = 16

_WHAT = {
    ErrorKind.RATE_LIMITED: "the provider is rate limiting this deployment",
    ErrorKind.SERVER_ERROR: "the provider failed",
    ErrorKind.TIMEOUT: "the provider did not answer in time",
    ErrorKind.CONNECTION: "the connection to the provider failed",
    ErrorKind.CLIENT_ERROR: "the provider refused the request",
    ErrorKind.AUTH: "the provider refused the deployment's credentials",
}
# LiteLLM's own diagnosis, where its class says more than the status does.
_WHAT_OF_CLASS = {
    "ContextWindowExceededError": "the request does not fit the model's context window",
    "ContentPolicyViolationError": "the provider's content policy refused the request",
    "UnsupportedParamsError": "a parameter of the request is not supported by this provider",
    "NotFoundError": "the provider does not know this model or endpoint",
}


def litellm_error(exc: BaseException, deployment: Deployment) -> ProviderError:
    """The ``ProviderError`` for ``exc``, raised by a LiteLLM call for ``deployment``."""
    status = _status(exc)
    kind: ErrorKind | None = None
    if status is None or not 400 <= status < 500 or status == 408:
        kind = _transport_kind(exc)
    if kind is not None:
        status = None  # LiteLLM's made-up status of a failure that never got one
    elif status is not None:
        kind = kind_of_status(status)
    else:
        kind = ErrorKind.SERVER_ERROR
    name = type(exc).__name__
    what = _WHAT_OF_CLASS.get(name) if kind is ErrorKind.CLIENT_ERROR else None
    detail = f"LiteLLM {name}" + (f", HTTP {status}" if status is not None else "")
    retry_after = None
    if kind is ErrorKind.RATE_LIMITED or status == 503:
        retry_after = parse_retry_after(_response_headers(exc))
    return ProviderError(
        kind,
        f"{what or _WHAT[kind]} ({detail})",
        deployment=deployment.name,
        status=status,
        retry_after=retry_after,
    )


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return status
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: ``__cause__``/``__context__`` and LiteLLM's
    ``original_exception``, outermost first."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_CAUSES:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            current.__cause__,
            current.__context__,
            getattr(current, "original_exception", None),
        ):
            if isinstance(inner, BaseException):
                pending.append(inner)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _transport_kind(exc: BaseException) -> ErrorKind | None:
    """TIMEOUT or CONNECTION when the failure was the transport's, else None. OpenAI's SDK
    (which LiteLLM uses) is recognised by class name, so that it need not be imported."""
    for cause in _causes(exc):
        names = _class_names(cause)
        if isinstance(cause, httpx.TimeoutException | TimeoutError) or "APITimeoutError" in names:
            return ErrorKind.TIMEOUT
        if isinstance(cause, httpx.TransportError | ConnectionError) or (
            "APIConnectionError" in names
        ):
            return ErrorKind.CONNECTION
    return None


def _response_headers(exc: BaseException) -> Mapping[str, str]:
    """The provider's response headers, lower-cased names (empty when LiteLLM kept none)."""
    found: Any = None
    try:
        response = getattr(exc, "response", None)
    except Exception:  # some SDK errors compute .response and fail without one
        response = None
    if isinstance(response, httpx.Response):
        found = response.headers
    if not found:
        found = getattr(exc, "litellm_response_headers", None)
    if not isinstance(found, Mapping | httpx.Headers):
        return {}
    return {str(name).lower(): str(value) for name, value in found.items()}
