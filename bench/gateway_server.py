"""The processes bench/gateway.py measures: the loopback upstream and a real ``deskpilot serve``.

Both run in processes of their own, apart from the load generator: the upstream in a spawned
process (``Upstream(record=False)``: nothing is kept per request over tens of thousands of
them), deskpilot as the operator would start it, its tenant and keys made through the admin
HTTP API with the operator token.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import redis
from procstat import established_inodes, proc_stats

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
UPSTREAM_KEY = "sk-bench"
START_TIMEOUT = 180.0  # the first start runs initdb
STOP_TIMEOUT = 60.0
QUOTAS = {  # every quota path runs; none ever refuses during a run
    "requests_per_minute": 10_000_000,
    "tokens_per_minute": 10_000_000_000,
    "tokens_per_period": 100_000_000_000,
    "spend_per_period": "100000000",
}
CONFIG = """\
model_list:
  - model_name: bench
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{port}/v1
      api_key: {key}
"""


def _serve_upstream(pipe: Connection) -> None:
    """The upstream process: report the port, then serve until terminated."""
    sys.path.insert(0, str(ROOT))
    from tests.upstream.server import Upstream

    async def serve() -> None:
        upstream = Upstream(record=False)
        await upstream.start()
        pipe.send(upstream.port)
        await asyncio.Event().wait()

    asyncio.run(serve())


@contextmanager
def upstream_process() -> Iterator[tuple[int, int]]:
    """``(port, pid)`` of a loopback upstream running in its own process."""
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    proc = context.Process(target=_serve_upstream, args=(theirs,), name="upstream", daemon=True)
    proc.start()
    theirs.close()
    try:
        if not mine.poll(60):
            raise RuntimeError("the upstream process did not start")
        assert proc.pid is not None
        yield mine.recv(), proc.pid
    finally:
        proc.terminate()
        proc.join(10)


def serve_has_config_option() -> bool:
    shown = subprocess.run(
        [sys.executable, "-m", "deskpilot.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    return "--config" in shown.stdout


class Deskpilot:
    """One ``deskpilot serve`` on a DESKPILOT_HOME that outlives restarts (worker sweeps)."""

    def __init__(self, home: Path, *, upstream_port: int, redis_url: str) -> None:
        self.home = home
        self.token = "dpo_" + secrets.token_hex(24)
        self.config_file = home / "deployments.yaml"
        self.config_file.write_text(CONFIG.format(port=upstream_port, key=UPSTREAM_KEY))
        self._redis_url = redis_url
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.key = ""
        self._report_key = ""

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("DESKPILOT_") and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            DESKPILOT_HOME=str(self.home),
            DESKPILOT_ADMIN_TOKEN=self.token,
            DESKPILOT_LOG_LEVEL="WARNING",
            REDIS_URL=self._redis_url,
        )
        return env

    @contextmanager
    def running(self, workers: int) -> Iterator[Deskpilot]:
        self.port = free_port()
        command = [sys.executable, "-m", "deskpilot.cli", "serve", "--port", str(self.port)]
        command += ["--workers", str(workers), "--config", str(self.config_file)]
        log = (self.home / "serve.log").open("ab")
        # cwd: the home, so no stray .env is read
        self._proc = subprocess.Popen(  # noqa: S603  (this interpreter, our module)
            command, env=self._env(), cwd=self.home, stdout=log, stderr=log
        )
        try:
            self._wait_ready()
            yield self
        finally:
            self._stop()
            log.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"deskpilot serve exited ({self._proc.returncode}):\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(
            f"deskpilot serve not ready after {START_TIMEOUT:.0f} s:\n{self.log_tail()}"
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(
                f"deskpilot serve ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it",
                file=sys.stderr,
            )
            proc.kill()
            proc.wait()
            postmaster = self.postmaster_pid()
            if postmaster is not None:  # its embedded database, left running by the kill
                os.kill(postmaster, signal.SIGTERM)

    def log_tail(self, lines: int = 30) -> str:
        path = self.home / "serve.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def postmaster_pid(self) -> int | None:
        pid_file = self.home / "pgdata" / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def connections_per_worker(self) -> list[int]:
        """Established client connections held by each worker process, most first (Linux):
        uvicorn's workers share one listening socket and whichever wakes first accepts."""
        stats = proc_stats()
        workers = [pid for pid, (ppid, _) in stats.items() if ppid == self.pid] or [self.pid]
        established = established_inodes(self.port)
        counts = []
        for pid in workers:
            held = 0
            with contextlib.suppress(OSError):  # the worker exited
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):  # closed meanwhile
                        held += os.readlink(f"/proc/{pid}/fd/{fd}") in established
            counts.append(held)
        return sorted((c for c in counts if c), reverse=True)

    def _admin(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def create_tenant(self) -> str:
        """The bench tenant with unrefusing quotas, and a key with the ``llm`` scope."""
        with self._admin() as admin:
            body = {"tenant_id": TENANT, "display_name": "Gateway benchmark"}
            admin.post("/admin/tenants", json=body).raise_for_status()
            admin.patch(
                f"/admin/tenants/{TENANT}/config", json={"quotas": QUOTAS}
            ).raise_for_status()
            self.key = self._new_key(admin, "bench", "llm")
            self._report_key = self._new_key(admin, "bench-report", "usage:read")
        return self.key

    @staticmethod
    def _new_key(admin: httpx.Client, name: str, scope: str) -> str:
        created = admin.post(
            f"/admin/tenants/{TENANT}/keys", json={"name": name, "scopes": [scope]}
        )
        created.raise_for_status()
        return str(created.json()["secret"])

    def quota_used(self) -> dict[str, str]:
        """What the tenant's quotas count as used now (GET /v1/usage): proof that every
        request went through reserve and settle."""
        headers = {"Authorization": f"Bearer {self._report_key}"}
        answer = httpx.get(self.base_url + "/v1/usage", headers=headers, timeout=30)
        answer.raise_for_status()
        return {q["quota"]: q["used"] for q in answer.json()["quotas"] if q["quota"] in QUOTAS}

    def check_chat(self, path: str, body: bytes) -> None:
        """One request first, so a missing route or a broken deployment is named plainly."""
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        answer = httpx.post(self.base_url + path, content=body, headers=headers, timeout=30)
        if answer.status_code == 404 and "model_not_found" not in answer.text:
            raise SystemExit(f"POST {path} is 404: the gateway routes are not in this checkout")
        if answer.status_code != 200 or "chat.completion" not in answer.text:
            raise SystemExit(f"POST {path} answered {answer.status_code}: {answer.text[:500]}")

    def wait_for_usage_events(self, expected: int) -> int:
        """The usage event count once it reaches ``expected`` or stops moving (15 s at most)."""
        deadline, last, still = time.monotonic() + 15, -1, 0
        while True:
            events = self.usage_events()
            still = still + 1 if events == last else 0
            if events >= expected or still >= 3 or time.monotonic() > deadline:
                return events
            last = events
            time.sleep(0.5)

    def usage_events(self) -> int:
        """The tenant's metered events (from the rollups, written with each ledger batch)."""
        now = datetime.now(UTC)
        window = {
            "start": (now - timedelta(days=2)).isoformat(),
            "end": (now + timedelta(days=2)).isoformat(),
        }
        with self._admin() as admin:
            answer = admin.get("/admin/usage", params=window)
            answer.raise_for_status()
        rows = [t for t in answer.json()["tenants"] if t["tenant_id"] == TENANT]
        return int(rows[0]["events"]) if rows else 0


@contextmanager
def deskpilot_home(upstream_port: int, redis_url: str) -> Iterator[Deskpilot]:
    """A fresh DESKPILOT_HOME (removed afterwards) and a flushed Redis database."""
    redis.Redis.from_url(redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="deskpilot-bench-") as home:
        yield Deskpilot(Path(home), upstream_port=upstream_port, redis_url=redis_url)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
