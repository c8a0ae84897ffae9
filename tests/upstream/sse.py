"""A small client-side SSE reader for tests that look at streams event by event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def iter_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
    if data:
        yield SseEvent(event, "\n".join(data))


async def collect(response: httpx.Response, into: list[SseEvent]) -> None:
    """Append events as they arrive, so a caller still has them when the stream breaks."""
    async for item in iter_events(response):
        into.append(item)


async def stream_into(client: httpx.AsyncClient, url: str, body: Any, into: list[SseEvent]) -> None:
    """POST a streaming request and collect its events into ``into`` until it ends or breaks."""
    async with client.stream("POST", url, json=body) as response:
        await collect(response, into)
