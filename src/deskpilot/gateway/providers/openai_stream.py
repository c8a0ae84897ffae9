"""Relaying an OpenAI chat stream: chunks out as they arrive, usage kept, failures placed.

A failure before the first chunk raises (the caller may still retry or fall back). After a
chunk went out, the caller has started answering its own client, so the failure is reported
in the closing ``StreamEnd`` instead, after everything that did arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.classify import stream_event_json
from deskpilot.gateway.providers.openai_wire import finish_reason_of, is_usage_only, parse_usage
from deskpilot.gateway.providers.sse import ServerSentEvent
from deskpilot.gateway.schemas import Deployment, StreamChunk, StreamEnd, StreamItem, Usage

DONE = "[DONE]"


@dataclass
class StreamProgress:
    """What a relay has seen of an OpenAI-shaped stream (shared with the LiteLLM adapter)."""

    delivered: int = 0
    done: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None

    def observe(self, chunk: dict[str, Any]) -> None:
        usage = parse_usage(chunk)
        if usage is not None:
            self.usage = usage
        self.finish_reason = finish_reason_of(chunk) or self.finish_reason

    def end(self, error: ProviderError | None, deployment: Deployment) -> StreamEnd:
        """The closing item; raises ``error`` instead while nothing was delivered. A stream
        that stopped with neither ``[DONE]`` nor a finish reason was cut."""
        if error is None and not self.done and self.finish_reason is None:
            error = ProviderError(
                ErrorKind.CONNECTION,
                "the stream ended before the provider finished it",
                deployment=deployment.name,
            )
        if error is not None and not self.delivered:
            raise error
        return StreamEnd(usage=self.usage, finish_reason=self.finish_reason, error=error)


def _chunk(event: ServerSentEvent, deployment: Deployment) -> dict[str, Any]:
    return stream_event_json(event, deployment, is_error=lambda payload: "error" in payload)


async def relay(
    events: AsyncIterable[ServerSentEvent], *, deployment: Deployment, pass_usage: bool
) -> AsyncIterator[StreamItem]:
    """``pass_usage``: the caller asked for ``include_usage`` itself, so it gets the usage chunk
    too; otherwise that chunk is consumed here."""
    progress = StreamProgress()
    error: ProviderError | None = None
    try:
        async for event in events:
            if event.data == DONE:
                progress.done = True
                break
            chunk = _chunk(event, deployment)
            progress.observe(chunk)
            if is_usage_only(chunk) and not pass_usage:
                continue
            progress.delivered += 1
            yield StreamChunk(chunk)
    except ProviderError as exc:
        error = exc
    yield progress.end(error, deployment)
