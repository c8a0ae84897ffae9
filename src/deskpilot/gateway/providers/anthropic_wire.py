"""OpenAI chat-completions request bodies, translated to the Anthropic Messages API.

What maps: the messages (``anthropic_messages``: system prompt, content, tool calls and
results); ``tools``, ``tool_choice`` (auto/none/required/a function as auto/none/any/tool)
and ``parallel_tool_calls`` (as ``disable_parallel_tool_use``);
``max_completion_tokens``/``max_tokens``; ``temperature`` and ``top_p`` (Anthropic's
temperature range is 0-1: above that the provider refuses it); ``stop`` (as
``stop_sequences``); ``user`` (as ``metadata.user_id``); ``model`` (the deployment's).

``max_tokens`` is required by Anthropic and optional for OpenAI callers: without either
limit, ``DEFAULT_MAX_TOKENS`` is sent. A ``Deployment`` has no setting for it (yet).

Refused, as ``UnsupportedRequestError`` (the provider answers a client error, sending
nothing): ``n`` > 1 (Anthropic returns one message), ``response_format`` ``json_object`` or
``json_schema`` (Anthropic has no JSON mode; an instruction in the prompt would not be the
guarantee the caller asked for), ``logprobs``, audio, and any parameter not listed here.
Dropped, because they only advise and Anthropic has no counterpart: ``IGNORED_PARAMETERS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deskpilot.gateway.providers.anthropic_messages import UnsupportedRequestError, conversation

JSON = dict[str, Any]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

IGNORED_PARAMETERS = frozenset(
    {
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "store",
        "metadata",  # OpenAI's is for its stored completions, not Anthropic's
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)
_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "user",
        "n",
        "response_format",
        "stream",
        "stream_options",
    }
)


def messages_payload(body: Mapping[str, Any], *, model: str, stream: bool) -> JSON:
    """The Anthropic ``POST /v1/messages`` body for an OpenAI chat body."""
    _refuse_unmappable(body)
    system, messages = conversation(body.get("messages"))
    payload: JSON = {"model": model, "messages": messages, "max_tokens": _max_tokens(body)}
    if system:
        payload["system"] = system
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        payload["stop_sequences"] = _stop_sequences(stop)
    if body.get("user") is not None:
        payload["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise UnsupportedRequestError("tools must be a list")
        payload["tools"] = [_tool(tool) for tool in tools]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        payload["tool_choice"] = choice
    if stream:
        payload["stream"] = True
    return payload


def _refuse_unmappable(body: Mapping[str, Any]) -> None:
    for name, value in body.items():
        if value is None or name in _TRANSLATED or name in IGNORED_PARAMETERS:
            continue
        if name in ("logprobs", "top_logprobs") and not value:
            continue
        raise UnsupportedRequestError(
            f"parameter {name!r} is not supported by Anthropic deployments"
        )
    n = body.get("n")
    if n is not None and n != 1:
        raise UnsupportedRequestError(
            "n > 1 is not supported by Anthropic deployments (one choice only)"
        )
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, Mapping) else None
        if kind != "text":
            raise UnsupportedRequestError(
                f"response_format {kind!r} is not supported by Anthropic deployments "
                "(no JSON mode); use a tool with an input schema instead"
            )


def _max_tokens(body: Mapping[str, Any]) -> int:
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    if value is None:
        return DEFAULT_MAX_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnsupportedRequestError("max_tokens must be a positive integer")
    return value


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return stop
    raise UnsupportedRequestError("stop must be a string or a list of strings")


def _tool(tool: Any) -> JSON:
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(function, Mapping) or tool.get("type") != "function":
        raise UnsupportedRequestError("only tools of type 'function' are supported")
    converted: JSON = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _tool_choice(choice: Any, parallel: Any) -> JSON | None:
    if choice is None:
        converted: JSON | None = {"type": "auto"} if parallel is False else None
    elif choice in ("auto", "none"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        converted = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise UnsupportedRequestError("tool_choice must be auto, none, required or a function")
    if converted is not None and parallel is False and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    return converted
