"""Quotas across processes: four processes contend for one tenant's limit, and a process killed
while holding a reservation loses its holds when the lease ends.

The workers attach to the session's database through its URL (not as embedded-server handles,
so a killed worker leaves nothing registered) and, for the Redis backend, to the test Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deskpilot.core.context import OperatorContext
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension, QuotaExceeded
from tests.conftest import ADMIN_TOKEN, TenantFixture
from tests.integration.test_quotas_support import quotas_for, used_of

WORKER = r"""
import asyncio, json, os, sys
from deskpilot.core.context import OperatorContext
from deskpilot.core.settings import Settings
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension, QuotaExceeded, QuotaService, quota_backend

async def main(slug, dimension, amount, count, lease):
    async with await Platform.open(Settings(), run_migrations=False) as platform:
        tenant = await platform.admin(OperatorContext("worker")).context_for(slug)
        service = QuotaService(platform.resources, quota_backend(platform.resources))
        print("ready", flush=True)
        sys.stdin.readline()  # start together

        async def one(i):
            try:
                await service.reserve(
                    tenant=tenant, request_id=f"{os.getpid()}-{i}",
                    amounts={Dimension(dimension): amount}, lease_seconds=lease,
                )
                return True
            except QuotaExceeded:
                return False

        granted = sum(await asyncio.gather(*(one(i) for i in range(count))))
        print(json.dumps({"granted": granted, "refused": count - granted}), flush=True)
        sys.stdin.readline()  # hold until told to go (or killed)

slug, dimension, amount, count, lease = sys.argv[1:]
asyncio.run(main(slug, dimension, int(amount), int(count), float(lease)))
"""

BACKEND_PARAMS = ["postgres", pytest.param("redis", marks=pytest.mark.redis)]


def worker_env(platform: Platform, home: Path, backend: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DATABASE_URL=platform.resources.db.engine.url.render_as_string(hide_password=False),
        DESKPILOT_HOME=str(home),
        DESKPILOT_ADMIN_TOKEN=ADMIN_TOKEN,
        DESKPILOT_DB_POOL_SIZE="3",
    )
    if backend == "redis":
        env["REDIS_URL"] = redis_url
    return env


@contextmanager
def workers(
    env: dict[str, str], cwd: Path, n: int, *args: str
) -> Iterator[list[subprocess.Popen[str]]]:
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                subprocess.Popen(  # noqa: S603  (this interpreter, a fixed script)
                    [sys.executable, "-c", WORKER, *args],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                    cwd=cwd,
                )
            )
            for _ in range(n)
        ]
        try:
            yield procs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=30)


def tell(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"worker exited with {proc.wait(timeout=30)}"
    return line.strip()


async def limit_tenant(
    platform: Platform, operator: OperatorContext, slug: str, **limits: int
) -> None:
    handle = await platform.admin(operator).on_tenant(slug)
    await handle.config.patch({"quotas": limits})


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
async def test_four_processes_grant_exactly_what_fits(
    platform: Platform,
    operator: OperatorContext,
    tenant_a: TenantFixture,
    home: Path,
    redis_url: str,
    tmp_path: Path,
    backend: str,
) -> None:
    await limit_tenant(platform, operator, tenant_a.slug, tokens_per_period=5000)
    env = worker_env(platform, home, backend, redis_url)
    args = (tenant_a.slug, Dimension.TOKENS_PER_PERIOD.value, "100", "50", "120")
    with workers(env, tmp_path, 4, *args) as procs:
        for proc in procs:
            assert await asyncio.to_thread(read_line, proc) == "ready"
        for proc in procs:
            tell(proc)
        results = [json.loads(await asyncio.to_thread(read_line, p)) for p in procs]
        for proc in procs:
            tell(proc)
        codes = [await asyncio.to_thread(p.wait, 60) for p in procs]
    assert codes == [0, 0, 0, 0]
    assert sum(r["granted"] for r in results) == 50
    assert sum(r["refused"] for r in results) == 150
    tenant = await platform.admin(operator).context_for(tenant_a.slug)
    async with quotas_for(platform, backend, redis_url) as quotas:
        statuses = await quotas.service.status(tenant=tenant)
    assert used_of(statuses, Dimension.TOKENS_PER_PERIOD)["used"] == 5000


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
async def test_holds_of_a_killed_process_expire(
    platform: Platform,
    operator: OperatorContext,
    tenant_a: TenantFixture,
    home: Path,
    redis_url: str,
    tmp_path: Path,
    backend: str,
) -> None:
    await limit_tenant(platform, operator, tenant_a.slug, concurrent_agent_runs=2)
    env = worker_env(platform, home, backend, redis_url)
    lease = 3.0
    runs = Dimension.CONCURRENT_AGENT_RUNS
    tenant = await platform.admin(operator).context_for(tenant_a.slug)
    async with quotas_for(platform, backend, redis_url) as quotas:
        with workers(env, tmp_path, 1, tenant_a.slug, runs.value, "1", "2", str(lease)) as [proc]:
            assert await asyncio.to_thread(read_line, proc) == "ready"
            tell(proc)
            assert json.loads(await asyncio.to_thread(read_line, proc))["granted"] == 2
            granted_by = datetime.now(UTC)
            proc.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(proc.wait, 30) == -signal.SIGKILL
        with pytest.raises(QuotaExceeded):  # the dead process still holds both slots
            await quotas.service.reserve(tenant=tenant, request_id="r", amounts={runs: 1})
        elapsed = (datetime.now(UTC) - granted_by).total_seconds()
        await asyncio.sleep(max(lease - elapsed, 0) + 0.2)
        after = await quotas.service.reserve(tenant=tenant, request_id="r", amounts={runs: 2})
        await quotas.service.settle(after, tenant=tenant)
