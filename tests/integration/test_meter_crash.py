"""Crash durability: whatever ``Meter.record`` acknowledged survives a SIGKILL of the process,
and retrying every request afterwards (acknowledged or not) never bills twice."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deskpilot.metering import Meter, PriceTable
from deskpilot.platform import Platform
from tests.conftest import ADMIN_TOKEN, TenantFixture
from tests.integration.test_meter import chat, sql

WRITERS = 8
ACKNOWLEDGED_BEFORE_KILL = 60

# Runs in the child: records one event after another per writer task, and prints a request
# id only after ``Meter.record`` returned (the event is durable).
CHILD = """
import asyncio, sys
from deskpilot.metering import Meter, PriceTable, UsageEvent
from deskpilot.platform import Platform

async def main(key, prefix, writers):
    platform = await Platform.open(run_migrations=False)
    tenant = await platform.authenticate(key)
    meter = Meter(platform.resources, PriceTable.load())

    async def writer(w):
        for i in range(10**9):
            request_id = f"{prefix}-{w}-{i}"
            event = UsageEvent(component="gateway", operation="chat", request_id=request_id,
                               provider="openai", provider_model="gpt-4o", input_tokens=100)
            await meter.record(event, tenant=tenant)
            sys.stdout.write(request_id + "\\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(w) for w in range(writers)))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.fixture
async def meter(platform: Platform) -> AsyncIterator[Meter]:
    opened = Meter(platform.resources, PriceTable.load())
    yield opened
    await opened.close()


def _child_env(platform: Platform, home: Path) -> dict[str, str]:
    """The test session's settings. The child attaches to the running server by URL, so it
    never holds (and, killed, never leaks) a handle on the embedded server."""
    url = platform.resources.db.engine.url.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPILOT_")}
    env.update(DESKPILOT_HOME=str(home), DESKPILOT_ADMIN_TOKEN=ADMIN_TOKEN, DATABASE_URL=url)
    return env


async def _run_and_kill(platform: Platform, tenant: TenantFixture, tmp_path: Path) -> list[str]:
    """Start the child, read acknowledged ids, SIGKILL it mid-stream; every id it printed."""
    prefix = f"crash-{tenant.slug}"
    with (tmp_path / "child.stderr").open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            tenant.key,
            prefix,
            str(WRITERS),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=_child_env(platform, tmp_path),
            cwd=tmp_path,
        )
        assert child.stdout is not None
        printed: list[str] = []
        try:
            async with asyncio.timeout(120):
                while len(printed) < ACKNOWLEDGED_BEFORE_KILL:
                    line = await child.stdout.readline()
                    assert line, (tmp_path / "child.stderr").read_text()
                    printed.append(line.decode().strip())
        finally:
            child.send_signal(signal.SIGKILL)
            rest = await child.stdout.read()  # printed before the kill: acknowledged too
            await child.wait()
    assert child.returncode == -signal.SIGKILL
    printed += [line for line in rest.decode().splitlines() if line]
    assert all(re.fullmatch(rf"{re.escape(prefix)}-\d+-\d+", p) for p in printed), printed
    return printed


async def test_acknowledged_events_survive_sigkill_and_retries_never_bill_twice(
    platform: Platform, meter: Meter, tenant_a: TenantFixture, tmp_path: Path
) -> None:
    printed = await _run_and_kill(platform, tenant_a, tmp_path)

    stored = {
        r[0]
        for r in await sql(
            platform, "SELECT request_id FROM usage_events WHERE tenant_id = :t", t=tenant_a.slug
        )
    }
    assert set(printed) <= stored, set(printed) - stored

    # Retry everything each writer may have attempted: all acknowledged ids, the one in
    # flight, and a few it never reached.
    last: dict[int, int] = {}
    prefix = f"crash-{tenant_a.slug}"
    for request_id in printed:
        writer, index = map(int, request_id.removeprefix(prefix + "-").split("-"))
        last[writer] = max(last.get(writer, -1), index)
    retried = [f"{prefix}-{w}-{i}" for w in range(WRITERS) for i in range(last.get(w, -1) + 4)]
    results = await asyncio.gather(
        *(meter.record(chat(r, input_tokens=100), tenant=tenant_a.context) for r in retried)
    )
    outcome = dict(zip(retried, results, strict=True))
    assert all(outcome[p].duplicate for p in printed)
    assert {r for r, rec in outcome.items() if rec.duplicate} == stored

    per_key = await sql(
        platform,
        "SELECT request_id, count(*) FROM usage_events WHERE tenant_id = :t "
        "GROUP BY request_id HAVING count(*) <> 1",
        t=tenant_a.slug,
    )
    assert per_key == []
    totals = await sql(
        platform,
        "SELECT (SELECT count(*) FROM usage_events WHERE tenant_id = :t), "
        "(SELECT sum(events) FROM usage_rollups WHERE tenant_id = :t AND granularity = 'day')",
        t=tenant_a.slug,
    )
    assert totals == [(len(retried), len(retried))]
