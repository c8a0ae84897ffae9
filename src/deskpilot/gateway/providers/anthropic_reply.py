"""Anthropic Messages responses, translated to OpenAI ``chat.completion`` objects.

``model`` is the one the provider reports (the deployment's), as the OpenAI-compatible
provider passes it through. ``id`` stays Anthropic's ``msg_...``, so a support case can be
traced upstream. Usage follows OpenAI's convention: ``prompt_tokens`` counts every input
token, cache reads and cache writes included; ``cached_tokens`` is the cache reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from deskpilot.gateway.schemas import Usage

JSON = dict[str, Any]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # only server tools pause, and none are ever sent
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str | None:
    """None while the message is unfinished; an unknown reason reads as a normal stop."""
    if not isinstance(stop_reason, str):
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_of(fields: Mapping[str, Any]) -> Usage:
    """An Anthropic ``usage`` object as ``Usage``."""
    cache_read = _count(fields.get("cache_read_input_tokens"))
    prompt = (
        _count(fields.get("input_tokens"))
        + cache_read
        + _count(fields.get("cache_creation_input_tokens"))
    )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=_count(fields.get("output_tokens")),
        cached_tokens=cache_read,
        from_provider=True,
    )


def openai_usage(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def tool_call(block: Mapping[str, Any]) -> JSON:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input", {}))},
    }


def completion(message: Mapping[str, Any], *, model: str) -> tuple[JSON, Usage | None]:
    """``(chat.completion body, usage)``; usage None when the provider reported none."""
    texts: list[str] = []
    calls: list[JSON] = []
    content = message.get("content")
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(tool_call(block))
        # thinking blocks are never asked for; server tool blocks never either
    reply: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        reply["tool_calls"] = calls
    body: JSON = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
    }
    fields = message.get("usage")
    usage = usage_of(fields) if isinstance(fields, Mapping) else None
    if usage is not None:
        body["usage"] = openai_usage(usage)
    return body, usage
