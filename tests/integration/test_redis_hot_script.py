"""``HotScript``: the quota scripts' lean EVALSHA path, against the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from deskpilot.core.redis import HotScripts
from tests.integration.test_quotas_support import open_redis_client

pytestmark = pytest.mark.redis

ECHO = "return {#KEYS, ARGV[1], KEYS[1]}"
SLOW_THEN_ECHO = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local deadline = now() + tonumber(ARGV[2])
while now() < deadline do end
return ARGV[1]
"""


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = await open_redis_client(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_it_runs_and_loads_itself_again_after_a_flush(redis: Redis) -> None:
    script = HotScripts(redis).script(ECHO)
    assert await script(keys=["dp:{t}:a", "dp:{t}:b"], args=["x", 7]) == [2, b"x", b"dp:{t}:a"]
    await redis.script_flush()  # as after a Redis restart: NOSCRIPT, then EVAL
    assert await script(keys=["dp:{t}:a"], args=[1]) == [1, b"1", b"dp:{t}:a"]
    assert await redis.script_exists(script.sha) == [True]


async def test_an_error_reply_is_raised_and_the_connection_stays_in_step(redis: Redis) -> None:
    hot = HotScripts(redis, keep=1)
    with pytest.raises(ResponseError, match="no such thing"):
        await hot.script("return redis.error_reply('no such thing')")(keys=[], args=[])
    kept = list(hot._idle)
    assert len(kept) == 1  # the error reply was read whole: the connection is kept
    assert await hot.script(ECHO)(keys=["k"], args=["after"]) == [1, b"after", b"k"]
    assert hot._idle == kept


async def test_a_call_cancelled_mid_reply_never_hands_its_reply_to_the_next(redis: Redis) -> None:
    hot = HotScripts(redis, keep=1)
    slow = hot.script(SLOW_THEN_ECHO)
    assert await slow(keys=[], args=["warm", 0]) == b"warm"
    (connection,) = hot._idle
    call = asyncio.ensure_future(slow(keys=[], args=["stale", 150_000]))  # 150 ms in Redis
    await asyncio.sleep(0.03)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert hot._idle == []  # dropped, not kept with a reply still on its way
    assert not connection.is_connected
    for n in range(3):
        assert await slow(keys=[], args=[f"mine-{n}", 0]) == f"mine-{n}".encode()


async def test_kept_connections_close_with_the_client(redis_url: str) -> None:
    client = await open_redis_client(redis_url)
    hot = HotScripts(client)
    await asyncio.gather(*(hot.script(ECHO)(keys=["k"], args=[n]) for n in range(3)))
    kept = list(hot._idle)
    assert kept
    assert all(c.is_connected for c in kept)
    await client.aclose()
    assert not any(c.is_connected for c in kept)


async def test_a_kept_connection_the_server_closed_is_replaced(redis: Redis) -> None:
    """As after a Redis restart: the kept connection is dead; the call runs on a fresh one."""
    hot = HotScripts(redis, keep=1)
    echo = hot.script(ECHO)
    assert await echo(keys=["k"], args=["before"]) == [1, b"before", b"k"]
    (kept,) = hot._idle
    await kept.send_command("CLIENT", "ID")
    client_id = await kept.read_response()
    assert await redis.execute_command("CLIENT", "KILL", "ID", client_id) == 1
    assert await echo(keys=["k"], args=["after"]) == [1, b"after", b"k"]
    (now,) = hot._idle
    await now.send_command("CLIENT", "ID")
    assert await now.read_response() != client_id  # a new server-side connection
