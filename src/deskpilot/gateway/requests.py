"""What the gateway accepts: OpenAI request bodies, checked for what the gateway itself relies on
(routing, counting, reserving) and otherwise passed through untouched.

Only the fields the gateway reads are typed; every other parameter (sampling, tools, response
formats, ``n``, vendor extensions) goes upstream as the caller sent it, so new OpenAI
parameters work without a deskpilot release. A refusal names the field (``messages.0.role``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from deskpilot.core.errors import BadRequest, FieldError

MAX_MESSAGES = 10_000
MAX_EMBEDDING_INPUTS = 2048


class InvalidRequest(BadRequest):
    type, title = "invalid_request", "Invalid request"

    def extra(self) -> dict[str, Any]:
        return {"param": self.errors[0].path} if self.errors else {}


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool | None = None


class _Chat(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, min_length=1, max_length=256)
    messages: list[_Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: StrictBool | None = None
    stream_options: _StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    n: StrictInt | None = Field(default=None, ge=1, le=128)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=512)


class _Embeddings(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, min_length=1, max_length=256)
    input: str | list[StrictInt] | list[str] | list[list[StrictInt]] = Field(
        union_mode="left_to_right"
    )
    dimensions: StrictInt | None = Field(default=None, ge=1)


def _refusal(exc: ValidationError) -> InvalidRequest:
    errors = tuple(
        FieldError(".".join(str(p) for p in err["loc"]) or "body", err["msg"])
        for err in exc.errors(include_url=False)
    )
    # A union reports each alternative; the first names the field well enough.
    first = errors[0]
    return InvalidRequest(f"{first.path}: {first.message}", errors[:10])


def _document(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidRequest(
            "the body must be a JSON object", (FieldError("body", "must be an object"),)
        )
    return body


class ChatRequest:
    """A validated ``POST /v1/chat/completions`` body (``body`` is what the caller sent)."""

    __slots__ = ("body", "max_output", "messages", "model", "n", "stream", "tools")

    def __init__(self, body: Any) -> None:
        document = _document(body)
        try:
            parsed = _Chat.model_validate(document)
        except ValidationError as exc:
            raise _refusal(exc) from None
        self.body: dict[str, Any] = dict(document)
        self.model = parsed.model
        self.stream = bool(parsed.stream)
        self.n = parsed.n or 1
        self.messages: list[Mapping[str, Any]] = document["messages"]
        self.tools: list[Mapping[str, Any]] | None = document.get("tools")
        # What the caller capped the output at (either spelling), or None.
        self.max_output = parsed.max_completion_tokens or parsed.max_tokens


class EmbeddingsRequest:
    """A validated ``POST /v1/embeddings`` body."""

    __slots__ = ("body", "input", "model")

    def __init__(self, body: Any) -> None:
        document = _document(body)
        try:
            parsed = _Embeddings.model_validate(document)
        except ValidationError as exc:
            raise _refusal(exc) from None
        value = parsed.input
        if isinstance(value, list) and not value:
            raise InvalidRequest("input: must not be empty", (FieldError("input", "empty"),))
        if isinstance(value, list) and len(value) > MAX_EMBEDDING_INPUTS:
            raise InvalidRequest(
                f"input: at most {MAX_EMBEDDING_INPUTS} items per request",
                (FieldError("input", "too many items"),),
            )
        self.body: dict[str, Any] = dict(document)
        self.model = parsed.model
        self.input = value
