"""Server-sent events, decoded incrementally from lines (WHATWG HTML, "event stream").

``aiter_lines`` cuts the body into lines as it arrives: lines split across network reads are
joined, LF, CRLF and CR all end a line (and nothing else does: a U+2028 inside JSON data is
data). ``SSEDecoder`` then reads fields, comments, multi-line data, and the blank line that
dispatches an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

_BOM = "\ufeff"
_CR, _LF = ord("\r"), ord("\n")


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


async def aiter_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Lines without their endings, decoded as UTF-8 (invalid bytes replaced). Lines are cut
    on bytes: no UTF-8 sequence contains CR or LF, so a character split across reads is whole
    again by the time its line is decoded."""
    pending = b""
    after_cr = False  # the last read ended in CR: an LF starting the next one completes it
    async for chunk in chunks:
        if after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if not chunk:
            continue
        data = pending + chunk if pending else chunk
        lines = data.splitlines()  # bytes: LF, CRLF and CR only
        after_cr = data[-1] == _CR
        pending = b"" if after_cr or data[-1] == _LF else lines.pop()
        for line in lines:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


async def aiter_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    decoder = SSEDecoder()
    async for line in lines:
        event = decoder.decode(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last
