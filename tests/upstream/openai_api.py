"""OpenAI-compatible payloads: chat completions (plain, streamed, tool calls), embeddings, models.

Shapes follow the public API reference, including the fields clients tend to trip over:
``usage`` details, ``"usage": null`` on every chunk when ``include_usage`` is on, and tool-call
deltas that carry the id and name first and the arguments in pieces.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

FINGERPRINT = "fp_upstream"
DONE = sse(b"[DONE]")
DEFAULT_DIMENSIONS = 8
_Chunk = Callable[[int, dict[str, Any], str | None], bytes]  # (choice index, delta, finish)


def error(
    status: int, message: str, kind: str, code: str | None = None, headers: Headers = ()
) -> Full:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_reply(status, body, headers)


def invalid(message: str) -> Full:
    return error(400, message, "invalid_request_error")


def models(model_ids: Sequence[str]) -> Full:
    data = [
        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "upstream"}
        for m in model_ids
    ]
    return json_reply(200, {"object": "list", "data": data})


@dataclass(frozen=True)
class _Chat:
    rid: str
    model: str
    n: int
    prompt_tokens: int
    include_usage: bool
    created: int


def chat(body: Any, reply: Reply, rid: str) -> Full | Stream:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return invalid("you must provide a model parameter")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return invalid("'messages' is a required property and must be a non-empty array")
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= 128:
        return invalid("'n' must be an integer between 1 and 128")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    prompt = prompt_tokens_of(body["messages"])
    ctx = _Chat(rid, body["model"], n, prompt, include_usage, int(time.time()))
    if body.get("stream") is True:
        return _stream(ctx, reply)
    if isinstance(reply, CutStream):
        return _complete(ctx, Ok())  # the server cuts it after the headers
    return _complete(ctx, reply)


def _completion_tokens(reply: Ok | ToolCall) -> int:
    if isinstance(reply, Ok):
        return count_words(reply.content)
    return count_words(reply.content or "") + count_words(_arguments(reply)) + 1


def _usage(ctx: _Chat, reply: Ok | ToolCall) -> dict[str, Any]:
    prompt = ctx.prompt_tokens if reply.prompt_tokens is None else reply.prompt_tokens
    completion = reply.completion_tokens
    if completion is None:
        completion = ctx.n * _completion_tokens(reply)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _arguments(reply: ToolCall) -> str:
    return json.dumps(dict(reply.arguments))


def _call_id(ctx: _Chat, index: int) -> str:
    return f"call_{ctx.rid}{index}"


def _message(ctx: _Chat, reply: Ok | ToolCall, index: int) -> dict[str, Any]:
    if isinstance(reply, Ok):
        return {"role": "assistant", "content": reply.content, "refusal": None}
    call = {"name": reply.name, "arguments": _arguments(reply)}
    return {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "tool_calls": [{"id": _call_id(ctx, index), "type": "function", "function": call}],
    }


def _complete(ctx: _Chat, reply: Ok | ToolCall) -> Full:
    finish = "stop" if isinstance(reply, Ok) else "tool_calls"
    body: dict[str, Any] = {
        "id": f"chatcmpl-{ctx.rid}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": i,
                "message": _message(ctx, reply, i),
                "logprobs": None,
                "finish_reason": finish,
            }
            for i in range(ctx.n)
        ],
    }
    if reply.usage:
        body["usage"] = _usage(ctx, reply)
    return Full(200, dumps(body))


def _stream(ctx: _Chat, reply: Reply) -> Stream:
    with_usage = ctx.include_usage and not isinstance(reply, CutStream) and reply.usage
    head: dict[str, Any] = {
        "id": f"chatcmpl-{ctx.rid}",
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "system_fingerprint": FINGERPRINT,
    }
    if with_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**head, "choices": [choice]})

    if isinstance(reply, CutStream):
        events = [chunk(0, {"role": "assistant", "content": "", "refusal": None}, None)]
        cut = cycled_pieces(DEFAULT_CONTENT, reply.after_chunks)
        events.extend(chunk(0, {"content": piece}, None) for piece in cut)
        return Stream(events, cut=True, pause_before_cut=reply.pause)
    events = []
    for index in range(ctx.n):
        events.extend(_choice_events(ctx, reply, index, chunk))
    if with_usage:
        events.append(sse({**head, "choices": [], "usage": _usage(ctx, reply)}))
    events.append(DONE)
    return Stream(events)


def _choice_events(ctx: _Chat, reply: Ok | ToolCall, index: int, chunk: _Chunk) -> list[bytes]:
    text = reply.content or ""
    if isinstance(reply, ToolCall) and not text:
        role: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    else:
        role = {"role": "assistant", "content": "", "refusal": None}
    events: list[bytes] = []
    if text or isinstance(reply, Ok):
        events.append(chunk(index, role, None))
        events.extend(chunk(index, {"content": piece}, None) for piece in pieces(text))
        role = {}
    if isinstance(reply, ToolCall):
        first = {
            "index": 0,
            "id": _call_id(ctx, index),
            "type": "function",
            "function": {"name": reply.name, "arguments": ""},
        }
        events.append(chunk(index, {**role, "tool_calls": [first]}, None))
        for part in argument_pieces(_arguments(reply)):
            call = {"index": 0, "function": {"arguments": part}}
            events.append(chunk(index, {"tool_calls": [call]}, None))
    events.append(chunk(index, {}, "stop" if isinstance(reply, Ok) else "tool_calls"))
    return events


def embeddings(body: Any) -> Full:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return invalid("you must provide a model parameter")
    inputs = _inputs(body.get("input"))
    if inputs is None:
        return invalid("'input' must be a string, an array of strings or of token arrays")
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
        return invalid("'dimensions' must be a positive integer")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, (key, _) in enumerate(inputs):
        vector = _vector(key, dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count for _, count in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_reply(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})


def _inputs(value: Any) -> list[tuple[str, int]] | None:
    """(hash key, token count) per input; token arrays count their length."""
    if isinstance(value, str):
        return [(value, count_words(value))]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, int) for v in value):
        return [(repr(value), len(value))]
    found: list[tuple[str, int]] = []
    for item in value:
        if isinstance(item, str):
            found.append((item, count_words(item)))
        elif isinstance(item, list) and all(isinstance(v, int) for v in item):
            found.append((repr(item), len(item)))
        else:
            return None
    return found


def _vector(key: str, dimensions: int) -> list[float]:
    """A unit vector derived from a hash of the input: same text, same vector."""
    raw = b""
    block = 0
    while len(raw) < 4 * dimensions:
        raw += hashlib.sha256(f"{block}:{key}".encode()).digest()
        block += 1
    ints = struct.unpack(f"<{dimensions}I", raw[: 4 * dimensions])
    values = [i / 0x7FFFFFFF - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]
