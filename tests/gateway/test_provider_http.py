"""The provider transport (``ProviderHttp``, aiohttp) on the wire: connections freed by streams
left early, stale keep-alive connections, body framings, read timeouts between stream chunks,
undecodable bodies, proxies from the environment, certificate verification.

A raw loopback server answers with exactly the bytes a test scripts, so framings and failures
that the OpenAI-shaped upstream never produces can be played.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from yarl import URL

from deskpilot.gateway import (
    Deployment,
    ErrorKind,
    OpenAICompatProvider,
    PoolLimits,
    ProviderError,
    StreamChunk,
    StreamEnd,
)
from deskpilot.gateway.providers.http import ProviderHttp, ProxyResolver
from tests.gateway.support import MESSAGES, SHORT_TIMEOUT, deployment_for
from tests.upstream.server import CutStream, Upstream

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHAT = b'{"object":"chat.completion","choices":[]}'


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head (the body, Content-Length framed, is read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """``http://127.0.0.1:port/v1`` of a server running ``handler`` per connection."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def raw_deployment(base: str, **overrides: object) -> Deployment:
    fields: dict[str, object] = {"name": "raw", "model": "m", "api_base": base, "api_key": "k"}
    return Deployment.model_validate({**fields, **overrides})


async def chat(base: str, **overrides: object) -> dict[str, object]:
    http = ProviderHttp()
    deployment = raw_deployment(base, **overrides)
    try:
        request = http.request(deployment, base + "/chat/completions", {"a": 1}, {})
        return await http.post_json(request, deployment)
    finally:
        await http.aclose()


async def test_abandoned_streams_do_not_keep_pool_slots(up: Upstream) -> None:
    provider = OpenAICompatProvider(limits=PoolLimits(max_connections=10))
    # a leaked slot would make the last call wait for a connection and time out
    deployment = deployment_for(up, connect_timeout=SHORT_TIMEOUT)
    # streams still open when left: two chunks, then silence (a finished body would give its
    # connection back by itself)
    up.script(*[CutStream(after_chunks=2, pause=30) for _ in range(50)])

    async def left_after_one_chunk(how: int) -> None:
        stream = provider.stream({"messages": MESSAGES}, deployment=deployment)
        assert isinstance(await anext(stream), StreamChunk)
        if how == 0:
            await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        # else dropped without a word: the loop's async generator finalizer closes it

    async def cancelled_while_reading() -> None:
        async def read_all() -> None:
            async for _ in provider.stream({"messages": MESSAGES}, deployment=deployment):
                await asyncio.sleep(10)

        task = asyncio.create_task(read_all())
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        for index in range(50):
            if index % 3 == 2:
                await cancelled_while_reading()
            else:
                await left_after_one_chunk(index % 3)
        gc.collect()
        await asyncio.sleep(0.05)  # the finalizers' aclose tasks run
        result = await provider.chat({"messages": MESSAGES}, deployment=deployment)
    finally:
        await provider.aclose()
    assert result.usage.from_provider


async def test_a_keep_alive_connection_the_server_closed_is_not_reused() -> None:
    connections = 0

    async def answer_once_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(CHAT), CHAT))
        await writer.drain()  # then closed, as a server's idle timeout would

    async with raw_server(answer_once_then_close) as base:
        http = ProviderHttp()
        deployment = raw_deployment(base)
        try:
            for _ in range(3):
                request = http.request(deployment, base + "/chat/completions", {}, {})
                assert (await http.post_json(request, deployment))["object"] == "chat.completion"
                await asyncio.sleep(0.05)  # idle: the close arrives
        finally:
            await http.aclose()
    assert connections == 3


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(CHAT), CHAT),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
        % (CHAT[:5], len(CHAT) - 5, CHAT[5:]),
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n%s" % CHAT,  # read until the close
    ],
    ids=["content-length", "chunked", "until-close"],
)
async def test_body_framings(reply: bytes) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async with raw_server(answer) as base:
        assert (await chat(base))["object"] == "chat.completion"


async def test_the_read_timeout_is_the_longest_silence_within_a_stream() -> None:
    pause = SHORT_TIMEOUT * 0.6  # each gap within the timeout, all of them well beyond it

    async def slow_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
        for n in range(4):
            chunk = b'{"choices":[{"index":0,"delta":{"content":"%d"}}]}' % n
            writer.write(b"data: " + chunk + b"\n\n")
            await writer.drain()
            await asyncio.sleep(pause)
        await asyncio.sleep(SHORT_TIMEOUT * 4)  # then silence

    async with raw_server(slow_stream) as base:
        provider = OpenAICompatProvider()
        deployment = raw_deployment(base, read_timeout=SHORT_TIMEOUT)
        try:
            items = [i async for i in provider.stream({"messages": []}, deployment=deployment)]
        finally:
            await provider.aclose()
    assert [i.data["choices"][0]["delta"]["content"] for i in items[:-1]] == ["0", "1", "2", "3"]
    end = items[-1]
    assert isinstance(end, StreamEnd)
    assert end.error is not None
    assert end.error.kind is ErrorKind.TIMEOUT


async def test_a_body_that_does_not_decompress_is_a_server_error() -> None:
    async def bad_gzip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b"this is not gzip at all"
        head = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n"
        writer.write(head % len(body) + body)
        await writer.drain()

    async with raw_server(bad_gzip) as base:
        with pytest.raises(ProviderError) as raised:
            await chat(base)
    assert raised.value.kind is ErrorKind.SERVER_ERROR
    assert "could not be decoded" in raised.value.message


async def test_a_proxy_from_the_environment_gets_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await read_request(reader)).split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(CHAT), CHAT))
        await writer.drain()

    async with raw_server(proxy) as proxy_base:
        monkeypatch.setenv("HTTP_PROXY", proxy_base.removesuffix("/v1"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert (await chat("http://provider.invalid/v1"))["object"] == "chat.completion"
    assert seen == [b"POST http://provider.invalid/v1/chat/completions HTTP/1.1"]


def test_no_proxy_hosts_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "internal.corp,localhost")
    resolve = ProxyResolver()
    assert resolve(URL("https://api.openai.com/v1")) == URL("http://proxy.corp:3128")
    assert resolve(URL("https://llm.internal.corp/v1")) is None
    assert resolve(URL("http://api.openai.com/v1")) is None  # no HTTP_PROXY


async def test_an_unverifiable_certificate_is_refused(tmp_path: Path) -> None:
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate, key = self_signed(tmp_path)
    server_side.load_cert_chain(certificate, key)
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ProviderError) as raised:
            await chat(f"https://127.0.0.1:{port}/v1")
    finally:
        server.close()
        await server.wait_closed()
    assert raised.value.kind is ErrorKind.CONNECTION
    assert "certificate" in raised.value.message.lower()


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that no CA signed, and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")
