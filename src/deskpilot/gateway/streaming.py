"""A streamed answer as SSE bytes for the caller, metered whichever way it ends.

Three endings, one usage event each:
- the provider finished: usage from its usage chunk (always requested), or counted; the
  event is durable before the closing ``data: [DONE]`` goes out;
- the provider broke mid-stream: an ``error`` event ends the stream; the tokens generated so
  far are billed (outcome ``error``);
- the caller left (disconnect, ``aclose``, ``abandon``): the upstream call is closed and what
  was generated so far is billed (outcome ``cancelled``). The recording runs as a task of its
  own, because the caller's task may be being cancelled; the gateway waits for such tasks on
  close. Whoever serves the stream must call ``abandon`` (or ``aclose``) when it stops
  iterating for any reason; ``SSEResponse`` does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from deskpilot.gateway import tokens
from deskpilot.gateway.errors import ProviderError
from deskpilot.gateway.resilience import OpenedStream
from deskpilot.gateway.schemas import StreamChunk, StreamEnd, Usage
from deskpilot.metering import RecordedUsage

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def sse(data: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def error_event(error: ProviderError) -> dict[str, Any]:
    return {
        "error": {
            "message": f"the provider failed mid-stream: {error.message}",
            "type": "api_error",
            "code": "upstream_failed",
            "param": None,
        }
    }


@dataclass
class StreamMeter:
    """How a stream's usage is recorded (``record``) and its reservation settled
    (``finish``), with what the gateway counted before the call."""

    record: Callable[[Usage, str], Awaitable[RecordedUsage]]
    finish: Callable[[], Awaitable[None]]
    prompt_tokens: int
    provider: str
    model: str

    def counted(self, generated: str) -> Usage:
        completion = tokens.count_text(generated, provider=self.provider, model=self.model)
        return Usage(
            prompt_tokens=self.prompt_tokens, completion_tokens=completion, from_provider=False
        )


class GatewayStream:
    """Iterate for SSE bytes; close when done (``async with``). ``headers`` are for the
    response (which deployment serves it, quota warnings)."""

    def __init__(
        self,
        opened: OpenedStream,
        meter: StreamMeter,
        *,
        headers: dict[str, str],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    ) -> None:
        self.headers = headers
        self._opened = opened
        self._meter = meter
        self._spawn = spawn
        self._generated: list[str] = []
        self._end: StreamEnd | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._iterator = self._relay()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterator

    async def __aenter__(self) -> GatewayStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop here (if not at the end) and wait until the usage is durable."""
        await asyncio.shield(self.abandon())

    def abandon(self) -> asyncio.Task[None]:
        """The caller is gone (disconnected, or stopped iterating): close the upstream call and
        record what was generated, in a task of its own. Safe to call from a ``finally`` of a
        cancelled task (it awaits nothing) and more than once."""
        if self._finishing is None:
            self._finishing = self._spawn(self._abandoned())
        return self._finishing

    async def _abandoned(self) -> None:
        try:
            await self._iterator.aclose()
        finally:
            await self._finish()

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        async for item in self._opened:
            if isinstance(item, StreamChunk):
                self._observe(item.data)
                yield sse(item.data)
            else:
                self._end = item
        if self._finishing is not None:  # abandoned meanwhile
            return
        # The end: durable before the caller learns the stream is complete.
        self._finishing = self._spawn(self._finish())
        await asyncio.shield(self._finishing)
        end = self._end
        yield sse(error_event(end.error)) if end and end.error else DONE

    def _observe(self, chunk: Mapping[str, Any]) -> None:
        text = completion_text(chunk.get("choices"))
        if text:
            self._generated.append(text)

    async def _finish(self) -> None:
        end = self._end
        try:
            await self._opened.aclose()
        except Exception:
            log.warning("closing an upstream stream failed", exc_info=True)
        if end is None:
            outcome, usage = "cancelled", None
        else:
            outcome, usage = ("error" if end.error else "ok"), end.usage
        if usage is None:
            usage = self._meter.counted("".join(self._generated))
        try:
            await self._meter.record(usage, outcome)
        except Exception:
            log.exception("recording a stream's usage failed")
        finally:
            await self._meter.finish()


def completion_text(choices: Any) -> str:
    """The generated text of ``choices`` (messages or stream deltas): content, refusals and
    tool-call names and arguments, concatenated."""
    parts: list[str] = []
    if not isinstance(choices, list):
        return ""
    for choice in choices:
        if not isinstance(choice, Mapping):
            continue
        message = choice.get("message") or choice.get("delta")
        if not isinstance(message, Mapping):
            continue
        for key in ("content", "refusal", "reasoning_content"):
            value = message.get(key)
            if isinstance(value, str):
                parts.append(value)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping):
                    for key in ("name", "arguments"):
                        if isinstance(function.get(key), str):
                            parts.append(function[key])
    return "".join(parts)
