"""What one upstream call costs the gateway's process, by HTTP client: CPU and wall time per
POST + JSON read against the loopback upstream.

    .venv/bin/python bench/provider_http.py [--requests 2000] [--rounds 3] [--concurrency 1,32]
                                            [--clients httpx,aiohttp,httptools,provider_http]

The upstream (tests/upstream, ``record=False``) runs in a process of its own
(bench/gateway_server.py), so only the client's CPU is counted (``time.process_time`` of this
process, which runs nothing else). Clients, each with one keep-alive pool, uvloop when
importable (as ``deskpilot serve`` runs):

- ``httpx``: the gateway's former transport, as it used it (``httpx.AsyncClient`` with pool
  limits, a per-request ``Timeout``, ``send(stream=True)``, ``aread``, ``aclose``);
- ``aiohttp``: ``ClientSession`` + ``TCPConnector`` with ``ClientTimeout(sock_connect,
  sock_read)``, no cookie jar;
- ``aiohttp_trust_env``: the same with ``trust_env=True`` (proxy variables and ~/.netrc looked
  up in a thread on every request);
- ``httptools``: a minimal keep-alive HTTP/1.1 client on an ``asyncio.Protocol`` with the
  httptools C parser (a floor: no TLS, no proxy, no pool bound, no retry);
- ``provider_http``: deskpilot's ``ProviderHttp`` as it is now (``request`` + ``post_json``).

Clients alternate in rounds (each round runs every client once per concurrency) so the
machine's noise hits all alike; the median over rounds is reported. Prints one JSON object
per (client, concurrency), then a summary keyed by client with the ratio to ``httpx``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_server import UPSTREAM_KEY, upstream_process  # bench/ sibling

PATH = "/v1/chat/completions"
PAYLOAD = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "My VPN disconnects every 10 minutes, why?"}],
    "max_tokens": 64,
}
HEADERS = {"authorization": f"Bearer {UPSTREAM_KEY}", "accept": "application/json"}

Call = Callable[[], Awaitable[dict[str, Any]]]


class Client:
    """``call()`` posts the payload and returns the JSON document; ``aclose()`` ends the pool."""

    async def call(self) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class HttpxClient(Client):
    def __init__(self, base: str) -> None:
        import httpx

        self._httpx = httpx
        self._url = base + PATH
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        self._client = httpx.AsyncClient(limits=limits, headers={"user-agent": "bench"})
        self._timeout = httpx.Timeout(connect=2.0, read=30.0, write=30.0, pool=2.0)

    async def call(self) -> dict[str, Any]:
        request = self._client.build_request(
            "POST", self._url, json=PAYLOAD, headers=dict(HEADERS), timeout=self._timeout
        )
        response = await self._client.send(request, stream=True)
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
        document: dict[str, Any] = json.loads(raw)
        return document

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpClient(Client):
    trust_env = False

    def __init__(self, base: str) -> None:
        import aiohttp

        self._url = base + PATH
        connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=30.0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"user-agent": "bench"},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=self.trust_env,
        )
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=30.0)

    async def call(self) -> dict[str, Any]:
        body = json.dumps(PAYLOAD).encode()
        headers = {**HEADERS, "content-type": "application/json"}
        async with self._session.post(
            self._url, data=body, headers=headers, timeout=self._timeout
        ) as response:
            raw = await response.read()
        document: dict[str, Any] = json.loads(raw)
        return document

    async def aclose(self) -> None:
        await self._session.close()


class AiohttpTrustEnvClient(AiohttpClient):
    """``trust_env=True``: every request looks up ~/.netrc and the proxy variables in a
    thread (``run_in_executor``, ``to_thread``)."""

    trust_env = True


class _Reply(asyncio.Protocol):
    """One keep-alive connection; one request at a time; Content-Length or chunked bodies."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._done: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._done is not None
        self._done.set_result(b"".join(self._body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError("closed"))

    async def exchange(self, request: bytes) -> bytes:
        assert self.transport is not None
        self._body = []
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._done


class HttptoolsClient(Client):
    def __init__(self, base: str) -> None:
        self._host, port = base.removeprefix("http://").split("/")[0].split(":")
        self._port = int(port)
        self._idle: list[_Reply] = []
        self._all: list[_Reply] = []

    async def call(self) -> dict[str, Any]:
        connection = self._idle.pop() if self._idle else await self._connect()
        body = json.dumps(PAYLOAD).encode()
        head = [f"POST {PATH} HTTP/1.1", f"host: {self._host}:{self._port}", "user-agent: bench"]
        head += [f"{name}: {value}" for name, value in HEADERS.items()]
        head += ["content-type: application/json", f"content-length: {len(body)}", "", ""]
        raw = await connection.exchange("\r\n".join(head).encode("latin-1") + body)
        self._idle.append(connection)
        document: dict[str, Any] = json.loads(raw)
        return document

    async def _connect(self) -> _Reply:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Reply, self._host, self._port)
        self._all.append(protocol)
        return protocol

    async def aclose(self) -> None:
        for connection in self._all:
            if connection.transport is not None:
                connection.transport.close()


class ProviderHttpClient(Client):
    def __init__(self, base: str) -> None:
        from deskpilot.gateway import Deployment
        from deskpilot.gateway.providers.http import ProviderHttp

        self._http = ProviderHttp()
        self._deployment = Deployment(
            name="bench", model="gpt-4o-mini", api_base=base + "/v1", api_key=UPSTREAM_KEY
        )
        self._url = base + PATH

    async def call(self) -> dict[str, Any]:
        request = self._http.request(self._deployment, self._url, PAYLOAD, HEADERS)
        return await self._http.post_json(request, self._deployment)

    async def aclose(self) -> None:
        await self._http.aclose()


CLIENTS: dict[str, Callable[[str], Client]] = {
    "httpx": HttpxClient,
    "aiohttp": AiohttpClient,
    "aiohttp_trust_env": AiohttpTrustEnvClient,
    "httptools": HttptoolsClient,
    "provider_http": ProviderHttpClient,
}


async def measure(client: Client, requests: int, concurrency: int) -> tuple[float, float]:
    """``(cpu_us, wall_us)`` per request over ``requests`` calls, ``concurrency`` at a time."""
    per_task = max(requests // concurrency, 1)

    async def worker() -> None:
        for _ in range(per_task):
            document = await client.call()
            assert document["object"] == "chat.completion"

    await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up: the pool fills
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = per_task * concurrency
    return (
        (time.process_time() - cpu) / done * 1e6,
        (time.perf_counter() - wall) / done * 1e6,
    )


async def run(
    args: argparse.Namespace, base: str
) -> dict[str, dict[int, list[tuple[float, float]]]]:
    names: list[str] = args.clients.split(",")
    levels = [int(c) for c in args.concurrency.split(",")]
    clients = {name: CLIENTS[name](base) for name in names}
    found: dict[str, dict[int, list[tuple[float, float]]]] = {
        name: {level: [] for level in levels} for name in names
    }
    try:
        for round_number in range(args.rounds):
            for level in levels:
                for name in names:
                    cpu_us, wall_us = await measure(clients[name], args.requests, level)
                    found[name][level].append((cpu_us, wall_us))
                    print(
                        f"round {round_number + 1} c={level} {name}: "
                        f"cpu {cpu_us:.0f} us, wall {wall_us:.0f} us",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for client in clients.values():
            await client.aclose()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per client, level, round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--clients", default="httpx,aiohttp,httptools,provider_http")
    args = parser.parse_args()
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
        loop = "uvloop"
    except ImportError:
        runner, loop = asyncio.run, "asyncio"
    with upstream_process() as (port, _pid):
        found = runner(run(args, f"http://127.0.0.1:{port}"))
    summary: dict[str, Any] = {"loop": loop, "requests": args.requests, "rounds": args.rounds}
    for name, levels in found.items():
        for level, samples in levels.items():
            cpu = statistics.median(s[0] for s in samples)
            wall = statistics.median(s[1] for s in samples)
            result = {"client": name, "concurrency": level, "cpu_us": round(cpu, 1)}
            result["wall_us"] = round(wall, 1)
            print(json.dumps(result), flush=True)
            summary[f"{name}_cpu_us_c{level}"] = round(cpu, 1)
            summary[f"{name}_wall_us_c{level}"] = round(wall, 1)
    if "httpx" in found:
        for name in found:
            for level in found[name]:
                base = summary[f"httpx_cpu_us_c{level}"]
                summary[f"{name}_cpu_vs_httpx_c{level}"] = round(
                    summary[f"{name}_cpu_us_c{level}"] / base, 2
                )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
