"""OpenAI chat messages, translated to an Anthropic ``system`` prompt and ``messages`` turns.

``system``/``developer`` messages are joined (blank line between) into the top-level
``system``, wherever they stand in the conversation. User content: text, and ``image_url``
parts as image blocks (a ``data:`` URL as base64, any other URL by reference). Assistant
``tool_calls`` become ``tool_use`` blocks (arguments parsed: they must be a JSON object);
``tool`` messages become ``tool_result`` blocks, consecutive ones in one user turn (a turn
after them is left to Anthropic, which joins consecutive turns of one role). Message
``name`` fields are dropped: Anthropic has none. Audio and file parts are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]

_SYSTEM_ROLES = frozenset({"system", "developer"})


class UnsupportedRequestError(ValueError):
    """The request asks for something the Anthropic API cannot do (a client error)."""


def conversation(messages: Any) -> tuple[str, list[JSON]]:
    """``(system prompt, turns)``; the system prompt is "" when there is none."""
    if not isinstance(messages, list) or not messages:
        raise UnsupportedRequestError("messages must be a non-empty list")
    system: list[str] = []
    turns: list[JSON] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise UnsupportedRequestError("every message must be an object")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system.append(_text(message.get("content"), role=str(role)))
        elif role == "user":
            turns.append({"role": "user", "content": _user_content(message.get("content"))})
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_content(message)})
        elif role == "tool":
            result = _tool_result(message)
            previous = turns[-1] if turns else None
            if previous is not None and _is_tool_results(previous):
                previous["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        else:
            raise UnsupportedRequestError(
                f"message role {role!r} is not supported by Anthropic deployments"
            )
    return "\n\n".join(part for part in system if part), turns


def _is_tool_results(turn: JSON) -> bool:
    content = turn["content"]
    return (
        turn["role"] == "user"
        and isinstance(content, list)
        and all(block.get("type") == "tool_result" for block in content)
    )


def _text(content: Any, *, role: str) -> str:
    """Content that may only be text: a string, or text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text_block(part, role=role)["text"] for part in content)
    raise UnsupportedRequestError(
        f"{role} message content must be a string or a list of text parts"
    )


def _text_block(part: Any, *, role: str) -> JSON:
    if isinstance(part, Mapping) and part.get("type") == "text":
        return {"type": "text", "text": str(part.get("text", ""))}
    kind = part.get("type") if isinstance(part, Mapping) else None
    raise UnsupportedRequestError(f"content part {kind!r} is not supported in {role} messages")


def _user_content(content: Any) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise UnsupportedRequestError("user message content must be a string or a list of parts")
    blocks: list[JSON] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "image_url":
            blocks.append(_image_block(part.get("image_url")))
        else:
            blocks.append(_text_block(part, role="user"))
    return blocks


def _image_block(image: Any) -> JSON:
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise UnsupportedRequestError("an image_url part needs a url")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url.removeprefix("data:").partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media_type:
        raise UnsupportedRequestError("an image data URL must be data:<media type>;base64,<data>")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_content(message: Mapping[str, Any]) -> str | list[JSON]:
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if isinstance(content, str) and not calls:
        return content
    blocks: list[JSON] = []
    if isinstance(content, list):
        blocks.extend(_text_block(part, role="assistant") for part in content)
    elif isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif content is not None and not isinstance(content, str):
        raise UnsupportedRequestError("assistant message content must be a string, a list or null")
    blocks.extend(_tool_use(call) for call in calls)
    return blocks


def _tool_use(call: Any) -> JSON:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or call.get("type", "function") != "function":
        raise UnsupportedRequestError("only function tool calls are supported")
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except (TypeError, ValueError):
        arguments = None
    if not isinstance(arguments, dict):
        raise UnsupportedRequestError("tool call arguments must be a JSON object")
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": function.get("name"),
        "input": arguments,
    }


def _tool_result(message: Mapping[str, Any]) -> JSON:
    content = message.get("content")
    result: JSON = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    if isinstance(content, list):
        result["content"] = [_text_block(part, role="tool") for part in content]
    else:
        result["content"] = _text(content, role="tool")
    return result
