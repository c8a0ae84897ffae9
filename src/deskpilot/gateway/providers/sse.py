"""Server-sent events, decoded incrementally from lines (WHATWG HTML, "event stream").

Lines come from ``httpx.Response.aiter_lines``, which already joins lines split across network
reads and accepts LF, CRLF and CR endings. Here: fields, comments, multi-line data, and the
blank line that dispatches an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"


class SSEDecoder:
    """Feed lines (without their endings) in order; an event comes out at each blank line."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._first = True

    def decode(self, line: str) -> ServerSentEvent | None:
        if self._first:
            self._first = False
            line = line.removeprefix(_BOM)
        line = line.rstrip("\r\n")
        if not line:
            return self.flush()
        if line.startswith(":"):  # a comment (keep-alives are sent this way)
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id" and "retry" only matter to a reconnecting browser; unknown fields are ignored
        return None

    def flush(self) -> ServerSentEvent | None:
        """The pending event, if any (also at the end of the stream, for servers that do not
        end their last event with a blank line)."""
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(data="\n".join(data), event=event or "message")


async def aiter_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    decoder = SSEDecoder()
    async for line in lines:
        event = decoder.decode(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last
