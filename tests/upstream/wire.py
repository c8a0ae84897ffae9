"""What a route handler hands the connection to send: pure data, no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

Headers = tuple[tuple[str, str], ...]

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
_PIECE = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True)
class Full:
    """A complete response. ``cut``: send only the headers, then drop the connection."""

    status: int
    body: bytes
    headers: Headers = ()
    content_type: str = JSON_TYPE
    cut: bool = False


@dataclass(frozen=True)
class Stream:
    """A 200 SSE response. ``cut``: drop the connection after the events instead of ending it."""

    events: list[bytes]
    cut: bool = False
    pause_before_cut: float = 0.0


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def json_reply(status: int, value: Any, headers: Headers = ()) -> Full:
    return Full(status, dumps(value), headers)


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def pieces(text: str) -> list[str]:
    """Split text the way providers stream it: word by word, leading spaces kept."""
    return _PIECE.findall(text)


def cycled_pieces(text: str, count: int) -> list[str]:
    """Exactly ``count`` pieces of ``text`` (repeating it if short): for cut streams."""
    parts = pieces(text) or [text]
    return [parts[i % len(parts)] for i in range(count)]


def argument_pieces(arguments_json: str, size: int = 8) -> list[str]:
    return [arguments_json[i : i + size] for i in range(0, len(arguments_json), size)] or [""]
