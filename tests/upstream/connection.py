"""One client connection: HTTP/1.1 parsing and framing with h11 on asyncio streams.

Faults are exact because nothing sits between this and the socket: a cut stream flushes what it
sent before closing, a reset sends a TCP RST (SO_LINGER 0), a hang just stops talking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import h11

from tests.upstream.wire import SSE_TYPE, Full, Stream

READ_SIZE = 65536
FLUSH_TIMEOUT = 5.0
_SERVER = (b"server", b"deskpilot-test-upstream")
_NO_CACHE = (b"cache-control", b"no-cache")


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @cached_property
    def payload(self) -> Any | None:
        """The body as JSON; None when empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HttpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.SERVER)

    async def next_request(self) -> Incoming | None:
        """The next complete request, or None once the client is gone or spoke garbage."""
        head: h11.Request | None = None
        body: list[bytes] = []
        try:
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    self._h11.receive_data(await self._reader.read(READ_SIZE))
                elif isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    return _incoming(head, b"".join(body))
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return None
        except h11.RemoteProtocolError as exc:
            await self._reject(exc.error_status_hint)
        except ConnectionError:
            pass
        return None

    async def _reject(self, status: int) -> None:
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        reply = Full(status, b'{"error":{"message":"malformed HTTP request"}}')
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            await self.send_full(reply, "")

    async def send_full(self, reply: Full, request_id: str) -> bool:
        """Send the response; False when the connection must not be reused."""
        headers = [
            (b"content-type", reply.content_type.encode()),
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-request-id", request_id.encode()),
            _SERVER,
            *((k.encode(), v.encode()) for k, v in reply.headers),
        ]
        head = self._h11.send(h11.Response(status_code=reply.status, headers=headers))
        if reply.cut:
            await self._write_flushed(head)
            self._writer.transport.abort()
            return False
        out = self._h11.send(h11.Data(data=reply.body))
        end = self._h11.send(h11.EndOfMessage())
        self._writer.write(b"".join((head or b"", out or b"", end or b"")))
        await self._writer.drain()
        return self._next_cycle()

    async def send_stream(self, reply: Stream, request_id: str, first_delay: float) -> bool:
        headers = [
            (b"content-type", SSE_TYPE.encode()),
            (b"x-request-id", request_id.encode()),
            _NO_CACHE,
            _SERVER,
        ]
        head = self._h11.send(h11.Response(status_code=200, headers=headers)) or b""
        if first_delay > 0:
            self._writer.write(head)
            await self._writer.drain()
            await asyncio.sleep(first_delay)
            head = b""
        framed = [head, *(self._h11.send(h11.Data(data=event)) or b"" for event in reply.events)]
        if reply.cut:
            await self._write_flushed(b"".join(framed))
            if reply.pause_before_cut > 0:
                await asyncio.sleep(reply.pause_before_cut)
            self._writer.transport.abort()
            return False
        framed.append(self._h11.send(h11.EndOfMessage()) or b"")
        self._writer.write(b"".join(framed))
        await self._writer.drain()
        return self._next_cycle()

    def _next_cycle(self) -> bool:
        if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
            return False
        self._h11.start_next_cycle()
        return True

    async def _write_flushed(self, data: bytes | None) -> None:
        """Write and wait until the kernel has it, so a following abort cannot discard it."""
        transport = self._writer.transport
        transport.set_write_buffer_limits(high=0)
        self._writer.write(data or b"")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._writer.drain(), FLUSH_TIMEOUT)

    def reset(self) -> None:
        """Drop the connection with a TCP RST: the client sees 'connection reset by peer'."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()


def _incoming(head: h11.Request, body: bytes) -> Incoming:
    headers: dict[str, str] = {}
    for name, value in head.headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    target = head.target.decode("latin-1")
    path, _, query = target.partition("?")
    return Incoming(head.method.decode("ascii"), path, query, headers, body)
