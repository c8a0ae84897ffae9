"""A light keep-alive HTTP/1.1 load generator in worker processes (used by bench/gateway.py).

An httpx client tops out around 1,000 requests/s in one process, far below what the loopback
upstream serves, so the benchmark would measure its own client. Here each connection is an
``asyncio.Protocol`` that writes one pre-encoded request, parses only the status line and the
framing (Content-Length or chunked), checks the body and writes the next request from the
same callback: no coroutine, future or header dict per request. uvloop is used when importable
(uvicorn[standard] brings it).

The workers are long-lived processes fed jobs over pipes, so the servers, the load and the
benchmark's own bookkeeping never share an interpreter (or a GIL). Every job connects first,
then all workers start together at an agreed monotonic instant: a warm-up (not measured),
the measured window, then a drain of the requests still in flight, so every request sent is
counted as a success or an error (the server meters the ones it answered; nothing is left
half-sent when the connections close).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import resource
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

MARKER = b'"chat.completion"'
DRAIN_SECONDS = 30.0
CONNECT_SLACK_NS = (100_000_000, 2_000_000)  # to open the connections: base, per connection


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    request: bytes  # the whole request, head and body, sent as is


def encode_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


@dataclass(frozen=True)
class Job:
    target: Target
    connections: int
    start_ns: int  # time.monotonic_ns() when the warm-up starts, the same in every worker
    warmup: float
    seconds: float


@dataclass
class Outcome:
    """One job's results: latencies of requests completed in the measured window, counts."""

    latencies_ns: list[int] = field(default_factory=list)
    ok_total: int = 0  # every success, warm-up and drain included (the server metered them)
    errors: Counter[str] = field(default_factory=Counter)
    cpu_seconds: float = 0.0  # this worker's own CPU time during the job

    def merge(self, other: Outcome) -> None:
        self.latencies_ns += other.latencies_ns
        self.ok_total += other.ok_total
        self.errors.update(other.errors)
        self.cpu_seconds += other.cpu_seconds


def _response(buf: bytearray) -> tuple[int, int] | None:
    """``(status, end of the response)`` once ``buf`` holds a whole response, else None."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buf[:head_end]).lower()
    status = int(head[9:12])
    body_start = head_end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        end = body_start + length
        return (status, end) if len(buf) >= end else None
    if b"\r\ntransfer-encoding: chunked" in head:
        return _chunked_end(buf, status, body_start)
    raise ValueError("a response without Content-Length or chunked framing")


def _chunked_end(buf: bytearray, status: int, at: int) -> tuple[int, int] | None:
    while True:
        line_end = buf.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buf[at:line_end]).split(b";")[0], 16)
        at = line_end + 2
        if size == 0:  # trailers (none expected) end with an empty line
            end = buf.find(b"\r\n", at)
            return None if end < 0 else (status, end + 2)
        at += size + 2
        if at > len(buf):
            return None


class LateStartError(Exception):
    """A worker was not connected by the common start: its window would not be the others'."""


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self._run = run
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_ns = 0
        self.in_flight = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            found = _response(self._buf)
        except ValueError:
            self._run.failed(self, "framing")
            return
        if found is not None:
            status, end = found
            good = status == 200 and self._buf.find(MARKER, 0, end) >= 0
            del self._buf[:end]
            self.in_flight = False
            self._run.completed(self, status, good)

    def connection_lost(self, exc: Exception | None) -> None:
        self._run.lost(self)


class _Run:
    """One job in one worker: its connections, the clock and the tallies."""

    def __init__(self, job: Job, start_perf_ns: int) -> None:
        self._request = job.target.request
        self._measure_from = start_perf_ns + int(job.warmup * 1e9)
        self._stop_at = self._measure_from + int(job.seconds * 1e9)
        self._open: set[_Connection] = set()
        self.outcome = Outcome()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send(self, conn: _Connection) -> None:
        now = time.perf_counter_ns()
        assert conn.transport is not None
        if now >= self._stop_at:
            conn.transport.close()
            return
        conn.sent_ns, conn.in_flight = now, True
        conn.transport.write(self._request)

    def completed(self, conn: _Connection, status: int, good: bool) -> None:
        now = time.perf_counter_ns()
        if good:
            self.outcome.ok_total += 1
            if self._measure_from <= now < self._stop_at:
                self.outcome.latencies_ns.append(now - conn.sent_ns)
        else:
            self.outcome.errors[str(status) if status != 200 else "body"] += 1
        self.send(conn)

    def failed(self, conn: _Connection, kind: str) -> None:
        self.outcome.errors[kind] += 1
        conn.in_flight = False
        assert conn.transport is not None
        conn.transport.abort()

    def add(self, conn: _Connection) -> None:
        self._open.add(conn)

    def lost(self, conn: _Connection) -> None:
        if conn.in_flight:
            self.outcome.errors["disconnect"] += 1
        self._open.discard(conn)
        if not self._open and not self.finished.done():
            self.finished.set_result(None)

    def abandon(self) -> None:
        """After the drain timeout: whatever is still in flight failed."""
        for conn in list(self._open):
            if conn.in_flight:
                conn.in_flight = False
                self.outcome.errors["timeout"] += 1
            assert conn.transport is not None
            conn.transport.abort()


async def _run_job(job: Job) -> Outcome:
    loop = asyncio.get_running_loop()
    start_perf_ns = time.perf_counter_ns() + (job.start_ns - time.monotonic_ns())
    run = _Run(job, start_perf_ns)
    conns = []
    for _ in range(job.connections):
        _, conn = await loop.create_connection(
            lambda: _Connection(run), job.target.host, job.target.port
        )
        run.add(conn)
        conns.append(conn)
    late_ns = time.perf_counter_ns() - start_perf_ns
    if late_ns > job.warmup * 1e9:  # a late start only shortens the warm-up, up to here
        raise LateStartError(f"connected {late_ns / 1e6:.0f} ms after the common start")
    await asyncio.sleep(max(0.0, -late_ns / 1e9))
    cpu_before = _cpu_seconds()
    for conn in conns:
        run.send(conn)
    # Reconnects are not attempted: a lost connection is an error and the load shrinks,
    # which the JSON shows (errors, lower requests/s) instead of hiding it.
    try:
        await asyncio.wait_for(
            asyncio.shield(run.finished), job.warmup + job.seconds + DRAIN_SECONDS
        )
    except TimeoutError:
        run.abandon()
    run.outcome.cpu_seconds = _cpu_seconds() - cpu_before
    return run.outcome


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _runner() -> Callable[[Coroutine[Any, Any, Outcome]], Outcome]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run

    def run(coro: Coroutine[Any, Any, Outcome]) -> Outcome:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)

    return run


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _serve_jobs(pipe: Connection) -> None:
    """A worker process: run each job received, send back its Outcome; None ends it."""
    run = _runner()
    pipe.send("ready")
    while (job := pipe.recv()) is not None:
        try:
            pipe.send(run(_run_job(job)))
        except OSError as exc:  # cannot connect: say so in the results, keep serving
            pipe.send(Outcome(errors=Counter({f"connect: {exc.strerror or exc}": 1})))
        except LateStartError as exc:
            pipe.send(exc)


class LoadPool:
    """``processes`` load workers; a job's connections are spread evenly over them."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._procs: list[Any] = []
        for n in range(processes):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_serve_jobs, args=(theirs,), name=f"load-{n}")
            proc.daemon = True
            proc.start()
            theirs.close()
            self._pipes.append(mine)
            self._procs.append(proc)
        for pipe in self._pipes:  # started and imported: a job's start time is then met
            self._receive(pipe)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def run(self, target: Target, connections: int, *, seconds: float, warmup: float) -> Outcome:
        shares = _split(connections, len(self._pipes))
        base, per_connection = CONNECT_SLACK_NS
        start_ns = time.monotonic_ns() + base + per_connection * connections
        busy = [pipe for pipe, share in zip(self._pipes, shares, strict=True) if share]
        for pipe, share in zip(busy, (s for s in shares if s), strict=True):
            pipe.send(Job(target, share, start_ns, warmup, seconds))
        total = Outcome()
        answers = [self._receive(pipe) for pipe in busy]
        for answer in answers:
            if isinstance(answer, LateStartError):
                raise RuntimeError(f"a load worker could not start on time: {answer}")
            total.merge(answer)
        return total

    @staticmethod
    def _receive(pipe: Connection) -> Any:
        try:
            return pipe.recv()
        except EOFError:
            raise RuntimeError("a load worker died (its traceback is above)") from None

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(None)
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def percentile_ms(sorted_ns: Sequence[int], q: float) -> float | None:
    """Nearest-rank percentile of sorted nanosecond samples, in milliseconds."""
    if not sorted_ns:
        return None
    rank = min(len(sorted_ns) - 1, max(0, math.ceil(q * len(sorted_ns)) - 1))
    return round(sorted_ns[rank] / 1e6, 3)
