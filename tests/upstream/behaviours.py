"""What the test upstream does with the next request, and what it recorded.

Token counts are deterministic so metering tests can predict them: prompt tokens are the
whitespace-separated words of every message (and the Anthropic ``system`` prompt) plus 4 per
message; completion tokens are the words of the generated text (tool calls add the words of
their arguments JSON plus one for the name), summed over ``n`` choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONTENT = "Hello from the test upstream."


@dataclass(frozen=True)
class Ok:
    """A normal completion (also the default for every request when nothing is scripted)."""

    content: str = DEFAULT_CONTENT
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    usage: bool = True  # False: no usage object anywhere, like providers that do not report it


@dataclass(frozen=True)
class ToolCall:
    """An assistant turn that calls one tool (OpenAI ``tool_calls`` / Anthropic ``tool_use``)."""

    name: str = "lookup_ticket"
    arguments: Mapping[str, Any] = field(default_factory=lambda: {"id": "INC0012"})
    content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    usage: bool = True


@dataclass(frozen=True)
class RateLimited:
    """429 with ``Retry-After`` (omitted when ``retry_after`` is None)."""

    retry_after: float | None = 1


@dataclass(frozen=True)
class ServerError:
    """An error status with the provider's error body."""

    status: int = 500


@dataclass(frozen=True)
class Hang:
    """Read the request, send nothing for ``seconds``, then close the connection."""

    seconds: float = 30


@dataclass(frozen=True)
class Reset:
    """Read the request, then reset the TCP connection (RST) without any response."""


@dataclass(frozen=True)
class CutStream:
    """Streaming: ``after_chunks`` content chunks, then the connection drops (no [DONE], no
    usage). Non-streaming: the response headers, then the connection drops."""

    after_chunks: int = 2
    pause: float = 0.0  # streaming: silence for this long after the chunks, then the drop


@dataclass(frozen=True)
class SlowFirstToken:
    """Wait ``seconds`` before the first body byte (non-streaming) or first chunk (streaming)."""

    seconds: float = 0.5
    then: Ok | ToolCall = field(default_factory=Ok)


Behaviour = Ok | ToolCall | RateLimited | ServerError | Hang | Reset | CutStream | SlowFirstToken
Reply = Ok | ToolCall | CutStream  # the behaviours a route handler turns into a body


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # names lowercased; repeated headers joined with ", "
    json: Any | None  # None when the body is empty or not JSON
    query: str = ""


def count_words(text: str) -> int:
    return len(text.split())


def text_of(content: Any) -> str:
    """The text of an OpenAI/Anthropic message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def prompt_tokens_of(messages: Any, system: Any = None) -> int:
    count = count_words(text_of(system))
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            count += count_words(text_of(content)) + 4
    return count
