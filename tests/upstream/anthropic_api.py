"""Anthropic Messages API payloads: plain and streamed messages, ``tool_use`` blocks, errors.

The stream is the documented event sequence (message_start, content_block_start,
content_block_delta..., content_block_stop, message_delta, message_stop) without ``ping``
events, which clients must ignore anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.upstream.behaviours import (
    DEFAULT_CONTENT,
    CutStream,
    Ok,
    Reply,
    ToolCall,
    count_words,
    prompt_tokens_of,
)
from tests.upstream.wire import (
    Full,
    Headers,
    Stream,
    argument_pieces,
    cycled_pieces,
    dumps,
    json_reply,
    pieces,
    sse,
)

ERROR_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(status: int, message: str, headers: Headers = ()) -> Full:
    kind = ERROR_KINDS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json_reply(
        status, {"type": "error", "error": {"type": kind, "message": message}}, headers
    )


def check_headers(headers: Mapping[str, str]) -> Full | None:
    if not headers.get("x-api-key"):
        return error(401, "x-api-key header is required")
    if not headers.get("anthropic-version"):
        return error(400, "anthropic-version: header is required")
    return None


def messages(body: Any, reply: Reply, rid: str) -> Full | Stream:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return error(400, "model: Field required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return error(400, "messages: Field required")
    if not isinstance(body.get("max_tokens"), int):
        return error(400, "max_tokens: Field required")
    input_tokens = prompt_tokens_of(body["messages"], body.get("system"))
    head = {"id": f"msg_{rid}", "type": "message", "role": "assistant", "model": body["model"]}
    if body.get("stream") is True:
        return _stream(head, reply, input_tokens, rid)
    if isinstance(reply, CutStream):
        return _complete(head, Ok(), input_tokens, rid)  # cut by the server
    return _complete(head, reply, input_tokens, rid)


def _arguments(reply: ToolCall) -> str:
    return json.dumps(dict(reply.arguments))


def _tokens(reply: Ok | ToolCall, input_tokens: int) -> tuple[int, int]:
    prompt = input_tokens if reply.prompt_tokens is None else reply.prompt_tokens
    if reply.completion_tokens is not None:
        return prompt, reply.completion_tokens
    if isinstance(reply, Ok):
        return prompt, count_words(reply.content)
    return prompt, count_words(reply.content or "") + count_words(_arguments(reply)) + 1


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _stop_reason(reply: Ok | ToolCall) -> str:
    return "end_turn" if isinstance(reply, Ok) else "tool_use"


def _complete(head: dict[str, Any], reply: Ok | ToolCall, input_tokens: int, rid: str) -> Full:
    content: list[dict[str, Any]] = []
    if reply.content:
        content.append({"type": "text", "text": reply.content})
    if isinstance(reply, ToolCall):
        tool = {"type": "tool_use", "id": f"toolu_{rid}", "name": reply.name}
        content.append({**tool, "input": dict(reply.arguments)})
    body = {**head, "content": content, "stop_reason": _stop_reason(reply), "stop_sequence": None}
    if reply.usage:
        body["usage"] = _usage(*_tokens(reply, input_tokens))
    return Full(200, dumps(body))


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, event=kind)


def _text_block(index: int, parts: list[str]) -> list[bytes]:
    events = [
        _event("content_block_start", index=index, content_block={"type": "text", "text": ""})
    ]
    for part in parts:
        delta = {"type": "text_delta", "text": part}
        events.append(_event("content_block_delta", index=index, delta=delta))
    return events


def _stream(head: dict[str, Any], reply: Reply, input_tokens: int, rid: str) -> Stream:
    message = {**head, "content": [], "stop_reason": None, "stop_sequence": None}
    if isinstance(reply, CutStream):
        start = _event("message_start", message={**message, "usage": _usage(input_tokens, 1)})
        parts = cycled_pieces(DEFAULT_CONTENT, reply.after_chunks)
        return Stream([start, *_text_block(0, parts)], cut=True)
    prompt, completion = _tokens(reply, input_tokens)
    if reply.usage:
        message["usage"] = _usage(prompt, 1)
    events = [_event("message_start", message=message)]
    index = 0
    if reply.content or isinstance(reply, Ok):
        events.extend(_text_block(index, pieces(reply.content or "")))
        events.append(_event("content_block_stop", index=index))
        index += 1
    if isinstance(reply, ToolCall):
        block = {"type": "tool_use", "id": f"toolu_{rid}", "name": reply.name, "input": {}}
        events.append(_event("content_block_start", index=index, content_block=block))
        for part in argument_pieces(_arguments(reply)):
            delta = {"type": "input_json_delta", "partial_json": part}
            events.append(_event("content_block_delta", index=index, delta=delta))
        events.append(_event("content_block_stop", index=index))
    end: dict[str, Any] = {"delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None}}
    if reply.usage:
        end["usage"] = {"output_tokens": completion}
    events.append(_event("message_delta", **end))
    events.append(_event("message_stop"))
    return Stream(events)
