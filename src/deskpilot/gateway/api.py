"""The OpenAI-compatible HTTP surface: ``POST /v1/chat/completions``, ``POST /v1/embeddings``,
``GET /v1/models``. Errors on these paths use OpenAI's error shape (``speak_openai_errors``),
so OpenAI clients and SDKs work unchanged; every response names the deployment that served it
(``X-Deskpilot-Deployment``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from deskpilot.core.context import TenantContext
from deskpilot.core.errors import FieldError
from deskpilot.core.http import billing_request_id, speak_openai_errors
from deskpilot.deps import PlatformDep, Tenant, current_tenant, get_platform
from deskpilot.gateway.requests import InvalidRequest
from deskpilot.gateway.streaming import GatewayStream
from deskpilot.platform import Platform

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"

router = APIRouter(tags=["gateway"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Malformed body (error.param names the field), max_tokens over the "
        "tenant's limit, or the provider refused the request"
    },
    401: {"description": "Missing or invalid API key"},
    403: {"description": "Model not allowed for this tenant, or the key lacks the llm scope"},
    404: {"description": "Unknown model (code model_not_found)"},
    429: {"description": "Quota exceeded (code quota_exceeded; quota, limit, used, reset_at)"},
    502: {"description": "Every deployment of the chain failed (error.tried lists them)"},
    503: {"description": "No provider or credentials configured for the model"},
}


def _body_schema(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": required,
                        "properties": properties,
                        "additionalProperties": True,
                    }
                }
            },
        }
    }


class SSEResponse(StreamingResponse):
    """A gateway stream as ``text/event-stream``. However the response ends (finished,
    client gone, cancelled), the stream is told, so its usage is recorded."""

    def __init__(self, stream: GatewayStream) -> None:
        super().__init__(
            stream,
            media_type="text/event-stream",
            headers={**stream.headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stream.abandon()


async def _caller(request: Request) -> tuple[Platform, TenantContext]:
    """The platform and the caller's tenant, resolved in the endpoint rather than through
    FastAPI's dependency injection, which costs more than the rest of routing on this path."""
    platform = get_platform(request)
    return platform, await current_tenant(request, platform)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise InvalidRequest(
            f"the body is not valid JSON: {reason}", (FieldError("body", "malformed JSON"),)
        ) from None


def _json(document: Any, headers: dict[str, str]) -> Response:
    content = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, media_type="application/json", headers=headers)


@router.post(
    CHAT_PATH,
    summary="Create a chat completion (OpenAI-compatible; stream: true for SSE)",
    responses=_ERRORS,
    openapi_extra=_body_schema(
        ["messages"],
        {
            "model": {"type": "string", "description": "A model alias from GET /v1/models"},
            "messages": {"type": "array", "items": {"type": "object"}},
            "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
        },
    ),
)
async def chat_completions(request: Request) -> Response:
    """The provider's ``chat.completion`` (or ``chat.completion.chunk`` events), passed
    through. Tools, JSON mode, structured outputs, ``n`` and sampling parameters go upstream as
    sent."""
    platform, tenant = await _caller(request)
    body = await _json_body(request)
    rid = billing_request_id(request)
    if isinstance(body, dict) and body.get("stream") is True:
        stream = await platform.gateway.stream(tenant=tenant, body=body, request_id=rid)
        return SSEResponse(stream)
    served = await platform.gateway.chat(tenant=tenant, body=body, request_id=rid)
    return _json(served.body, served.headers)


@router.post(
    EMBEDDINGS_PATH,
    summary="Create embeddings (OpenAI-compatible)",
    responses=_ERRORS,
    openapi_extra=_body_schema(
        ["input"],
        {
            "model": {"type": "string"},
            "input": {"description": "A string, a list of strings, or token ids"},
        },
    ),
)
async def embeddings(request: Request) -> Response:
    platform, tenant = await _caller(request)
    body = await _json_body(request)
    served = await platform.gateway.embeddings(
        tenant=tenant, body=body, request_id=billing_request_id(request)
    )
    return _json(served.body, served.headers)


@router.get(
    MODELS_PATH,
    summary="The model aliases this tenant may use",
    responses={401: _ERRORS[401], 403: _ERRORS[403]},
)
async def models(platform: PlatformDep, tenant: Tenant) -> dict[str, Any]:
    return {"object": "list", "data": platform.gateway.models(tenant=tenant)}


# Served by ``core.http.DirectRoutes`` (past FastAPI's routing), registered above as well.
DIRECT_ROUTES = {("POST", CHAT_PATH): chat_completions, ("POST", EMBEDDINGS_PATH): embeddings}


def install(app: FastAPI) -> None:
    app.include_router(router)
    speak_openai_errors(app, CHAT_PATH, EMBEDDINGS_PATH, MODELS_PATH)
