"""``Upstream``: a loopback OpenAI- and Anthropic-compatible provider with scripted behaviour.

    async with Upstream() as up:              # in the test's event loop
        up.script(RateLimited(retry_after=1), Ok(content="hi"))
        ... point a client at up.openai_base or up.anthropic_base ...

    with Upstream.in_thread() as up:          # own loop in a thread: benchmarks, sync clients
        ...

Every request takes the next scripted behaviour (FIFO), or ``Ok()`` when the script is empty,
and is recorded before the behaviour applies. Faults (``RateLimited``, ``ServerError``,
``Hang``, ``Reset``) apply to any route before authentication; ``Ok``, ``ToolCall``,
``CutStream`` and ``SlowFirstToken`` shape the route's normal answer (a request the route
refuses, say a 401, still consumes its behaviour; ``CutStream`` only cuts 200 answers).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any

from tests.upstream import anthropic_api, openai_api
from tests.upstream.behaviours import (
    Behaviour,
    CutStream,
    Hang,
    Ok,
    RateLimited,
    RecordedRequest,
    Reply,
    Reset,
    ServerError,
    SlowFirstToken,
    ToolCall,
)
from tests.upstream.connection import HttpConnection, Incoming
from tests.upstream.wire import Full, Stream

__all__ = [
    "Behaviour",
    "CutStream",
    "Hang",
    "Ok",
    "RateLimited",
    "RecordedRequest",
    "Reset",
    "ServerError",
    "SlowFirstToken",
    "ToolCall",
    "Upstream",
]

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-sonnet-4-5")
_OPENAI_ROUTES = {
    "/v1/chat/completions": "POST",
    "/v1/embeddings": "POST",
    "/v1/models": "GET",
}
_ANTHROPIC_MESSAGES = "/anthropic/v1/messages"


class Upstream:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = DEFAULT_MODELS,
        record: bool = True,
    ) -> None:
        """``record=False`` keeps nothing per request (long benchmarks)."""
        self._host = host
        self._port = port
        self._record = record
        self._models = openai_api.models(models)
        self._script: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()  # script() and reset() may come from another thread
        self._serial = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self.connections_opened = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self._host, self._port, backlog=1024
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open connection (hanging ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()
        await asyncio.sleep(0)  # let the transports' close callbacks run

    async def __aenter__(self) -> Upstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = DEFAULT_MODELS,
        record: bool = True,
    ) -> Iterator[Upstream]:
        """A started server on its own event loop in a daemon thread; stopped on exit."""
        upstream = cls(host=host, port=port, models=models, record=record)
        ready = threading.Event()
        handle: dict[str, Any] = {}

        async def run() -> None:
            stop = asyncio.Event()
            handle["loop"], handle["stop"] = asyncio.get_running_loop(), stop
            try:
                await upstream.start()
            except Exception as exc:  # re-raised in the caller's thread
                handle["error"] = exc
                return
            finally:
                ready.set()
            try:
                await stop.wait()
            finally:
                await upstream.stop()

        thread = threading.Thread(target=asyncio.run, args=(run(),), name="test-upstream")
        thread.daemon = True
        thread.start()
        ready.wait()
        if "error" in handle:
            thread.join()
            raise handle["error"]
        try:
            yield upstream
        finally:
            handle["loop"].call_soon_threadsafe(handle["stop"].set)
            thread.join()

    # -- test surface ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the upstream is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base(self) -> str:
        return self.base_url + "/anthropic"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order, after any still queued."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def pending(self) -> int:
        """How many scripted behaviours no request has taken yet."""
        return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._requests.clear()

    # -- serving ---------------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections_opened += 1
        connection = HttpConnection(reader, writer)
        try:
            while (incoming := await connection.next_request()) is not None:
                if not await self._answer(connection, incoming):
                    break
        except ConnectionError:
            pass  # the client went away mid-response: nothing to tell anyone
        except asyncio.CancelledError:
            # Only stop() cancels these tasks. Ending normally matters: Python 3.11's
            # start_server callback calls task.exception() and logs a traceback for a
            # cancelled task.
            pass
        finally:
            connection.close()
            self._connections.discard(task)

    def _admit(self, incoming: Incoming) -> Behaviour:
        with self._lock:
            if self._record:
                recorded = RecordedRequest(
                    incoming.method,
                    incoming.path,
                    incoming.headers,
                    incoming.payload,
                    incoming.query,
                )
                self._requests.append(recorded)
            return self._script.popleft() if self._script else Ok()

    async def _answer(self, connection: HttpConnection, incoming: Incoming) -> bool:
        """Apply the next behaviour; False when the connection is finished."""
        behaviour = self._admit(incoming)
        request_id = f"{self._id_prefix}{next(self._serial):08x}"
        delay = 0.0
        if isinstance(behaviour, Reset):
            connection.reset()
            return False
        if isinstance(behaviour, Hang):
            await asyncio.sleep(behaviour.seconds)
            return False
        if isinstance(behaviour, RateLimited | ServerError):
            return await connection.send_full(self._fault(incoming, behaviour), request_id)
        if isinstance(behaviour, SlowFirstToken):
            delay, behaviour = behaviour.seconds, behaviour.then
        reply = self._route(incoming, behaviour, request_id)
        if isinstance(behaviour, CutStream) and isinstance(reply, Full) and reply.status == 200:
            reply = replace(reply, cut=True)
        if isinstance(reply, Stream):
            return await connection.send_stream(reply, request_id, delay)
        if delay > 0:
            await asyncio.sleep(delay)
        return await connection.send_full(reply, request_id)

    def _fault(self, incoming: Incoming, fault: RateLimited | ServerError) -> Full:
        anthropic = incoming.path.startswith("/anthropic/")
        if isinstance(fault, ServerError):
            if anthropic:
                return anthropic_api.error(fault.status, "Internal server error")
            message = "The server had an error while processing your request. Sorry about that!"
            return openai_api.error(fault.status, message, "server_error")
        headers: tuple[tuple[str, str], ...] = ()
        if fault.retry_after is not None:
            seconds = fault.retry_after
            text = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            headers = (("retry-after", text),)
        message = "Rate limit reached for requests. Please try again later."
        if anthropic:
            return anthropic_api.error(429, message, headers)
        return openai_api.error(429, message, "rate_limit_error", "rate_limit_exceeded", headers)

    def _route(self, incoming: Incoming, reply: Reply, request_id: str) -> Full | Stream:
        path, method = incoming.path, incoming.method
        if path == _ANTHROPIC_MESSAGES:
            if method != "POST":
                return anthropic_api.error(405, f"Method {method} not allowed")
            refused = anthropic_api.check_headers(incoming.headers)
            if refused is not None:
                return refused
            if incoming.body and incoming.payload is None:
                return anthropic_api.error(400, "The request body is not valid JSON.")
            return anthropic_api.messages(incoming.payload, reply, request_id)
        if path.startswith("/anthropic/"):
            return anthropic_api.error(404, f"Not found: {path}")
        expected = _OPENAI_ROUTES.get(path)
        if expected is None:
            return openai_api.error(404, f"Invalid URL ({method} {path})", "invalid_request_error")
        if method != expected:
            return openai_api.error(405, f"Method {method} not allowed", "invalid_request_error")
        scheme, _, key = incoming.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key.strip():
            message = "You didn't provide an API key (Authorization: Bearer YOUR_KEY)."
            return openai_api.error(401, message, "invalid_request_error", "invalid_api_key")
        if path == "/v1/models":
            return self._models
        body = incoming.payload
        if incoming.body and body is None:
            return openai_api.invalid("We could not parse the JSON body of your request.")
        if path == "/v1/embeddings":
            return openai_api.embeddings(body)
        return openai_api.chat(body, reply, request_id)
