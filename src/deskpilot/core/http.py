"""HTTP plumbing shared by every router: request ids, body limit, access log, error shape.

The middlewares are plain ASGI (no per-request task or body buffering of BaseHTTPMiddleware).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskpilot.core.errors import BadRequest, DeskpilotError, FieldError, PayloadTooLarge

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("deskpilot.http")


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def billing_request_id(request: Request) -> str:
    """The request id as an idempotency key for billing: the id itself when deskpilot made it,
    with a random suffix when the caller chose it (a caller reusing its ``X-Request-ID`` must
    not turn a second paid call into a "duplicate" that is never billed)."""
    state = request.scope.get("state", {})
    rid = str(state.get("request_id", "")) or uuid.uuid4().hex
    if state.get("request_id_supplied"):
        return f"{rid[:100]}.{secrets.token_hex(6)}"
    return rid


class ProblemField(BaseModel):
    path: str
    message: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457 problem details)."""

    type: str = Field(description="Machine-readable error type, e.g. 'not_found'.")
    title: str
    status: int
    detail: str
    request_id: str
    errors: list[ProblemField] | None = Field(
        default=None, description="Offending fields, by dotted path."
    )


_STATUS_TEXT = {
    400: "Malformed request",
    401: "Missing or invalid credential",
    429: "Quota exceeded (body: quota, limit, used, requested, reset_at)",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    422: "Invalid input",
    503: "A backing service is unreachable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring the problem shape for these statuses."""
    return {
        status: {
            "model": Problem,
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem(
    status: int,
    type_: str,
    title: str,
    detail: str,
    rid: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        **(extra or {}),
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": rid,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(errors: Any) -> list[dict[str, str]]:
    return [{"path": e.path, "message": e.message} for e in errors]


class RequestContextMiddleware:
    """Assigns the request id (a caller's well-formed ``X-Request-ID`` is kept), echoes it,
    binds it to log context, and writes one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        kept = _VALID_REQUEST_ID.fullmatch(supplied) is not None
        rid = supplied if kept else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        # A caller may reuse its id; whatever bills by request id must not trust it as unique.
        state["request_id"], state["request_id_supplied"] = rid, kept
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((REQUEST_ID_HEADER.encode(), rid.encode()))
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            state = scope.get("state", {})
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "tenant_id": state.get("tenant_id"),
                    "key_id": state.get("key_id"),
                },
            )
            structlog.contextvars.unbind_contextvars("request_id")


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and not length.isdigit():
            await self._refuse(scope, receive, send, BadRequest("invalid Content-Length header"))
            return
        if length is not None and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # FastAPI turns any error raised while reading the body into its own 400;
                # whatever the app answers after the limit tripped, the client gets the 413.
                if not started:
                    started = True
                    await self._refuse(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: DeskpilotError | None = None
    ) -> None:
        error = error or PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
        rid = str(scope.get("state", {}).get("request_id", ""))
        app = scope.get("app")
        openai_paths = getattr(getattr(app, "state", None), OPENAI_ERROR_PATHS, ())
        headers = {"connection": "close"}
        response = (
            openai_error(error.status, error.type, error.detail, rid, headers=headers)
            if scope.get("path") in openai_paths
            else problem(error.status, error.type, error.title, error.detail, rid, headers=headers)
        )
        await response(scope, receive, send)


Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """Sends the hottest routes (the OpenAI-compatible gateway's) straight to their endpoint,
    past FastAPI's inner layers: exception middleware, exit stack, router, dependency
    solving and the request/response wrapper: about a tenth of the gateway's CPU per request
    (docs/operators/scale-out.md, "Gateway throughput and latency"). The endpoints must take
    only the ``Request``.

    Installed innermost of the app's own middlewares, so the request id, access log and body
    limit still apply. The route stays registered with FastAPI too (OpenAPI, and it serves the
    request if this middleware is absent). An exception becomes the response of the handler
    the app registered for it, found as Starlette finds it; one with no such handler goes on
    to the app's server-error handler, exactly as through the router."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = _handler_for(scope["app"], exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(app: Any, exc: Exception) -> Any:
    """The app's handler for ``exc`` by its class hierarchy, as Starlette's exception
    middleware looks it up (``Exception`` itself belongs to the server-error middleware)."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


class _BodyTooLargeError(Exception):
    pass


OPENAI_ERROR_PATHS = "openai_error_paths"
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def speak_openai_errors(app: FastAPI, *paths: str) -> None:
    """Errors on ``paths`` use OpenAI's error shape, so OpenAI clients and SDKs read them:
    ``{"error": {"message", "type", "param", "code", ...}, "request_id"}``. ``code`` is the
    deskpilot error type; machine-readable extras (a quota's limit, the chain tried) are
    members of ``error``."""
    registered: set[str] = getattr(app.state, OPENAI_ERROR_PATHS, set())
    registered.update(paths)
    setattr(app.state, OPENAI_ERROR_PATHS, registered)


def openai_error(
    status: int,
    type_: str,
    detail: str,
    rid: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    members = dict(extra or {})
    param = members.pop("param", None) or (errors[0]["path"] if errors else None)
    error: dict[str, Any] = {
        "message": detail,
        "type": _OPENAI_TYPES.get(status, "api_error"),
        "param": param,
        "code": type_,
        **members,
    }
    if errors:
        error["errors"] = errors
    return JSONResponse({"error": error, "request_id": rid}, status_code=status, headers=headers)


def _answer(
    request: Request,
    status: int,
    type_: str,
    title: str,
    detail: str,
    rid: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    if request.url.path in getattr(request.app.state, OPENAI_ERROR_PATHS, ()):
        return openai_error(status, type_, detail, rid, errors, headers, extra)
    return problem(status, type_, title, detail, rid, errors, headers, extra)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DeskpilotError)
    async def _domain(request: Request, exc: DeskpilotError) -> JSONResponse:
        headers: dict[str, str] = {}
        if exc.status == 401:
            headers["www-authenticate"] = "Bearer"
        retry = exc.retry_after()
        if retry is not None:
            headers["retry-after"] = str(retry)
        return _answer(
            request,
            exc.status,
            exc.type,
            exc.title,
            exc.detail,
            request_id(request),
            _field_errors(exc.errors),
            headers or None,
            exc.extra(),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if malformed:
            context = malformed[0].get("ctx", {}).get("error", "")
            return _answer(
                request,
                400,
                "malformed_json",
                "Malformed JSON",
                f"the body is not valid JSON: {context}".rstrip(": "),
                request_id(request),
            )
        errors = [
            FieldError(".".join(str(p) for p in e["loc"] if p != "body") or "body", e["msg"])
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e.path}: {e.message}" for e in errors)
        return _answer(
            request,
            422,
            "validation_error",
            "Invalid input",
            detail,
            request_id(request),
            _field_errors(errors),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return _answer(
            request,
            exc.status_code,
            type_,
            str(exc.detail),
            str(exc.detail),
            request_id(request),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # Input the database cannot store (e.g. NUL in text); schemas refuse what they know of.
        log.warning("database refused a value", exc_info=True)
        return _answer(
            request,
            422,
            "validation_error",
            "Invalid input",
            "the request holds a value that cannot be stored",
            request_id(request),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(OSError)
    async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unreachable", exc_info=True)
        return _answer(
            request,
            503,
            "unavailable",
            "Service unavailable",
            "a backing service is unreachable; retry shortly",
            request_id(request),
            headers={"retry-after": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return _answer(
            request,
            500,
            "internal_error",
            "Internal error",
            "an unexpected error occurred; quote the request id when reporting it",
            request_id(request),
        )
