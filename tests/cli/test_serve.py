"""``deskpilot serve`` as a real process: it starts the embedded PostgreSQL, answers HTTP, and on
SIGINT/SIGTERM stops uvicorn and then the embedded server (no postgres left running)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest

from tests.cli.conftest import Invoke, refused

STARTUP_LIMIT = 120.0  # seconds; generous bounds, never asserted as timings
STOP_LIMIT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


def log_file(home: Path) -> Path:
    return home.parent / "serve.stderr"


def log_tail(home: Path) -> str:
    return log_file(home).read_text()[-4000:]


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_leftovers(proc: subprocess.Popen[str], pgdata: Path) -> None:
    """Whatever the test's outcome: no deskpilot process, no postgres server left behind."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its uvicorn workers
        proc.wait(timeout=STOP_LIMIT)
    pid = postmaster_pid(pgdata)
    if pid is not None and running(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            server = psutil.Process(pid)
            server.send_signal(signal.SIGQUIT)  # immediate shutdown
            server.wait(timeout=STOP_LIMIT)


@contextlib.contextmanager
def serving(home: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DESKPILOT_ADMIN_TOKEN", "DESKPILOT_HOME"}
    }
    env |= {"DESKPILOT_HOME": str(home), "DESKPILOT_LOG_JSON": "true"}
    stderr = log_file(home).open("w")
    lines: queue.Queue[str] = queue.Queue()
    with (
        stderr,
        subprocess.Popen(  # noqa: S603  (this interpreter, our module, fixed arguments)
            [sys.executable, "-m", "deskpilot.cli", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=home.parent,
            start_new_session=True,
        ) as proc,
    ):
        assert proc.stdout is not None
        reader = threading.Thread(target=pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            yield proc, lines
        finally:
            stop_leftovers(proc, home / "pgdata")
            reader.join(timeout=STOP_LIMIT)


def wait_for_line(
    proc: subprocess.Popen[str], lines: queue.Queue[str], prefix: str, seen: list[str], home: Path
) -> str:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert proc.poll() is None, (
                f"serve exited ({proc.returncode}): {seen}\n{log_tail(home)}"
            )
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line
    pytest.fail(f"no line starting {prefix!r} within {STARTUP_LIMIT}s: {seen}\n{log_tail(home)}")


def wait_healthy(proc: subprocess.Popen[str], base: str, home: Path) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited ({proc.returncode})\n{log_tail(home)}"
        try:
            return httpx.get(f"{base}/healthz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"{base}/healthz did not answer within {STARTUP_LIMIT}s\n{log_tail(home)}")


@pytest.mark.parametrize(
    ("workers", "stop_signal"),
    [(1, signal.SIGINT), (1, signal.SIGTERM), (2, signal.SIGTERM)],
    ids=["1-worker-SIGINT", "1-worker-SIGTERM", "2-workers-SIGTERM"],
)
def test_serve_starts_answers_and_stops_the_embedded_server(
    tmp_path: Path, workers: int, stop_signal: signal.Signals
) -> None:
    home = tmp_path / "home"
    pgdata = home / "pgdata"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    with serving(home, "--port", str(port), "--workers", str(workers)) as (proc, lines):
        url_line = wait_for_line(proc, lines, "deskpilot serving on", seen, home)
        assert url_line == f"deskpilot serving on {base}  (docs: {base}/docs)"

        assert wait_healthy(proc, base, home).status_code == 200
        for _ in range(2 * workers):  # whichever worker answers has a working database
            ready = httpx.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}

        server_pid = postmaster_pid(pgdata)
        assert server_pid is not None
        assert running(server_pid)

        proc.send_signal(stop_signal)
        assert proc.wait(timeout=STOP_LIMIT) == 0, log_tail(home)
        assert not (pgdata / "postmaster.pid").exists()
        assert not running(server_pid)

    while not lines.empty():
        seen.append(lines.get())
    banner = "\n".join(seen)
    assert f"data: embedded PostgreSQL in {pgdata}" in banner
    token_file = home / "admin-token"
    assert f"operator token: in {token_file}" in banner
    assert token_file.read_text().strip() not in banner  # where the token is, never the token
    assert 'next: deskpilot tenants create acme --name "Acme Corp"' in banner
    assert "deskpilot keys create --tenant acme" in banner


def test_serve_no_migrate_refuses_an_unmigrated_database(invoke: Invoke, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-home"
    result = invoke(
        "serve", "--no-migrate", "--port", str(free_port()), env={"DESKPILOT_HOME": str(fresh)}
    )
    error = refused(result)
    assert "database schema is at none (empty database)" in error
    assert "run 'deskpilot migrate'" in error
    assert postmaster_pid(fresh / "pgdata") is None  # and the embedded server it started is stopped


def test_serve_spreads_workers_and_replaces_one_that_dies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    with serving(home, "--port", str(port), "--workers", "2") as (proc, lines):
        wait_for_line(proc, lines, "deskpilot serving on", seen, home)
        assert wait_healthy(proc, base, home).status_code == 200

        def workers() -> list[psutil.Process]:
            found = []
            for child in psutil.Process(proc.pid).children():
                with contextlib.suppress(psutil.Error):  # a dead one, not yet reaped
                    if "spawn_main" in " ".join(child.cmdline()):
                        found.append(child)
            return found

        deadline = time.monotonic() + STARTUP_LIMIT
        while len(workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        first = workers()
        assert len(first) == 2

        def listening() -> list[Any]:
            return [
                c for w in first for c in w.net_connections("tcp") if c.status == psutil.CONN_LISTEN
            ]

        # each worker listens on its own socket of the port (SO_REUSEPORT), once it has started
        deadline = time.monotonic() + STARTUP_LIMIT
        while len(listening()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        sockets = listening()
        assert {c.laddr.port for c in sockets} == {port}
        assert len(sockets) == 2

        first[0].kill()
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            now = workers()
            if len(now) == 2 and first[0].pid not in {w.pid for w in now}:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the dead worker was not replaced\n{log_tail(home)}")
        assert wait_healthy(proc, base, home).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_LIMIT) == 0, log_tail(home)
