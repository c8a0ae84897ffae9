"""An Anthropic Messages stream, translated to OpenAI ``chat.completion.chunk`` items.

``message_start`` gives the role chunk, held back until the first content, tool call or
finish: Anthropic often answers 200 and then sends an ``overloaded_error`` event before any
content, and until something was delivered that failure is still raised (so retried or
fallen back from), as with the OpenAI provider. Text deltas become ``content`` deltas; a
``tool_use`` block becomes one OpenAI tool call (its first delta carries id, type and name,
``input_json_delta`` pieces follow as ``arguments``); ``message_delta`` carries the finish
reason. ``ping`` and event types this module does not know are skipped (Anthropic may add
some). The usage chunk the caller asked for with ``include_usage`` comes last.

Usage is the provider's once its ``message_delta`` gave the output count; a stream that
broke before that reports none (the gateway counts), since ``message_start``'s output count
is a placeholder.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.anthropic_reply import finish_reason, openai_usage, usage_of
from deskpilot.gateway.providers.classify import stream_event_json
from deskpilot.gateway.providers.sse import ServerSentEvent
from deskpilot.gateway.schemas import Deployment, StreamChunk, StreamEnd, StreamItem, Usage

JSON = dict[str, Any]


@dataclass
class _Translation:
    model: str
    message_id: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    usage_fields: JSON = field(default_factory=dict)
    output_reported: bool = False
    finish_reason: str | None = None
    done: bool = False
    tool_index: dict[int, int] = field(default_factory=dict)  # content block -> tool call

    def chunk(self, delta: JSON, reason: str | None = None) -> JSON:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return self._envelope(choices=[choice])

    def _envelope(self, **fields: Any) -> JSON:
        head = {"id": self.message_id, "object": "chat.completion.chunk", "created": self.created}
        return {**head, "model": self.model, **fields}

    def usage(self) -> Usage | None:
        return usage_of(self.usage_fields) if self.output_reported else None

    def usage_chunk(self) -> JSON | None:
        usage = self.usage()
        return None if usage is None else self._envelope(choices=[], usage=openai_usage(usage))

    def observe_usage(self, fields: Any) -> None:
        if isinstance(fields, Mapping):
            self.usage_fields.update(fields)

    def translate(self, event: JSON) -> JSON | None:
        """The chunk an event becomes, if any."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            message = message if isinstance(message, Mapping) else {}
            self.message_id = message.get("id")
            self.model = message.get("model") or self.model
            self.observe_usage(message.get("usage"))
            return self.chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta"))
        if kind == "message_delta":
            delta = event.get("delta")
            reason = finish_reason(delta.get("stop_reason") if isinstance(delta, Mapping) else None)
            self.finish_reason = reason or self.finish_reason
            if isinstance(event.get("usage"), Mapping):
                self.observe_usage(event["usage"])
                self.output_reported = True
            return self.chunk({}, reason) if reason is not None else None
        if kind == "message_stop":
            self.done = True
        return None  # content_block_stop, ping, and future event types

    def _block_start(self, index: Any, block: Any) -> JSON | None:
        if not isinstance(block, Mapping):
            return None
        if block.get("type") == "text" and block.get("text"):
            return self.chunk({"content": block["text"]})
        if block.get("type") != "tool_use" or not isinstance(index, int):
            return None
        position = self.tool_index[index] = len(self.tool_index)
        function = {"name": block.get("name"), "arguments": ""}
        call = {"index": position, "id": block.get("id"), "type": "function", "function": function}
        return self.chunk({"tool_calls": [call]})

    def _block_delta(self, index: Any, delta: Any) -> JSON | None:
        if not isinstance(delta, Mapping):
            return None
        if delta.get("type") == "text_delta":
            return self.chunk({"content": str(delta.get("text", ""))})
        if delta.get("type") == "input_json_delta" and index in self.tool_index:
            piece = {"arguments": str(delta.get("partial_json", ""))}
            call = {"index": self.tool_index[index], "function": piece}
            return self.chunk({"tool_calls": [call]})
        return None  # thinking, signature and citation deltas: never asked for


def _event(event: ServerSentEvent, deployment: Deployment) -> JSON:
    return stream_event_json(
        event, deployment, is_error=lambda payload: payload.get("type") == "error"
    )


async def translate(
    events: AsyncIterable[ServerSentEvent], *, deployment: Deployment, pass_usage: bool
) -> AsyncIterator[StreamItem]:
    """``pass_usage``: end with an OpenAI usage chunk (the caller asked for ``include_usage``)."""
    state = _Translation(model=deployment.model)
    head: JSON | None = None  # the role chunk, until something follows it
    delivered = 0
    error: ProviderError | None = None
    try:
        async for event in events:
            chunk = state.translate(_event(event, deployment))
            if chunk is not None and head is None and not delivered:
                head = chunk
            elif chunk is not None:
                for data in (head, chunk) if head is not None else (chunk,):
                    delivered += 1
                    yield StreamChunk(data)
                head = None
            if state.done:
                break
    except ProviderError as exc:
        error = exc
    if error is None and not state.done and state.finish_reason is None:
        error = ProviderError(
            ErrorKind.CONNECTION,
            "the stream ended before the provider finished it",
            deployment=deployment.name,
        )
    if error is not None and not delivered:
        raise error
    if error is None and head is not None:  # a message with no content at all
        yield StreamChunk(head)
    usage_chunk = state.usage_chunk() if pass_usage and error is None else None
    if usage_chunk is not None:
        yield StreamChunk(usage_chunk)
    yield StreamEnd(usage=state.usage(), finish_reason=state.finish_reason, error=error)
