"""PostgreSQL access: engines, units of work, and the per-transaction tenant binding.

Every transaction starts with ``SET LOCAL ROLE`` to one of two roles that the migrations create,
and with the tenant bound as the transaction-local setting ``deskpilot.tenant_id``:

* ``deskpilot_app``: subject to row-level security on every tenant-owned table (RLS is enabled
  and forced, the role has no BYPASSRLS); it sees only rows whose ``tenant_id`` equals the bound
  tenant, and nothing when no tenant is bound.
* ``deskpilot_operator``: platform-admin paths (tenant lifecycle, purge, reports). Only
  ``Database.dangerously_unscoped_session`` uses it, so review finds every use with grep.

Both settings are transaction-local (``set_config(..., true)``), so a pooled connection never
carries a tenant or a role into the next transaction, with or without a transaction-mode pooler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from deskpilot.core.context import TenantContext
from deskpilot.core.embedded import EmbeddedPostgres
from deskpilot.core.errors import SetupError, TenantScopeError
from deskpilot.core.models import is_tenant_owned
from deskpilot.core.settings import Settings

APP_ROLE = "deskpilot_app"
OPERATOR_ROLE = "deskpilot_operator"
MIN_SERVER_VERSION = 150000

_BIND = text(
    "SELECT set_config('role', :role, true), set_config('deskpilot.tenant_id', :tenant, true)"
)


def _bind_transaction(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    if transaction.nested or transaction.parent is not None:
        return
    conn.execute(
        _BIND,
        {
            "role": session.info.get("db_role", APP_ROLE),
            "tenant": session.info.get("tenant_id", ""),
        },
    )


def _refuse_unbound(state: ORMExecuteState) -> None:
    """Fail closed in Python too: no ORM statement on a tenant-owned table without a tenant."""
    info = state.session.info
    if info.get("db_role", APP_ROLE) != APP_ROLE or info.get("tenant_id"):
        return
    for mapper in state.all_mappers:
        if is_tenant_owned(mapper.class_):
            raise TenantScopeError(
                f"{mapper.class_.__name__} queried in a session with no tenant bound"
            )


CommitHook = Callable[[frozenset[str]], Awaitable[None]]


def mark_changed(session: AsyncSession, tenant_id: str) -> None:
    """Record that this unit of work changes what a tenant's credentials resolve to (a key
    revoked, a suspension, a config change); commit hooks then invalidate cached contexts."""
    session.info.setdefault("changed_tenants", set()).add(tenant_id)


class BoundSession(Session):
    """Session whose every transaction binds its role and tenant (see module docstring)."""


event.listen(BoundSession, "after_begin", _bind_transaction)
event.listen(BoundSession, "do_orm_execute", _refuse_unbound)


def async_url(url: str) -> str:
    """Accept the URL forms operators paste (postgres://, postgresql://) and pick asyncpg."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise SetupError(
        "DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432/deskpilot"
    )


class Database:
    """Owns the engine (and the embedded server, if any). Built by the app factory or CLI."""

    def __init__(self, engine: AsyncEngine, embedded: EmbeddedPostgres | None = None) -> None:
        self.engine = engine
        self.embedded = embedded
        self._commit_hooks: list[CommitHook] = []
        self._sessions = async_sessionmaker(
            engine, expire_on_commit=False, sync_session_class=BoundSession
        )

    @classmethod
    async def connect(cls, settings: Settings, **engine_options: Any) -> Database:
        """Start (or attach to) the embedded server, or use DATABASE_URL; no checks yet.
        ``engine_options`` go to SQLAlchemy (``doctor`` uses a single unpooled connection)."""
        embedded: EmbeddedPostgres | None = None
        if settings.database_url is None:
            embedded = EmbeddedPostgres(settings.pgdata)
            url = await asyncio.to_thread(embedded.start)
        else:
            url = async_url(settings.database_url.get_secret_value())
        options: dict[str, Any] = {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_pool_size,
            # No pre-ping: it costs a round trip on every checkout (~0.5 ms, a quarter of a
            # unit of work here). After a server restart the first query on a stale connection
            # fails (503, retryable) and SQLAlchemy then invalidates the whole pool.
            "pool_pre_ping": False,
        }
        return cls(create_async_engine(url, **(engine_options or options)), embedded)

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        """``connect``, then check the server (version, pgvector) or fail saying how to fix it."""
        db = await cls.connect(settings)
        try:
            await db.check_server()
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        await self.engine.dispose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None

    async def check_server(self) -> None:
        """Fail early, saying how to fix it, if the server is too old or lacks pgvector."""
        try:
            async with self.engine.connect() as conn:
                version = int((await conn.execute(text("SHOW server_version_num"))).scalar_one())
                has_vector = (
                    await conn.execute(
                        text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                    )
                ).first() is not None
        except SetupError:
            raise
        except Exception as exc:
            raise SetupError(
                f"cannot connect to PostgreSQL: {exc}. Check DATABASE_URL (host, port, user, "
                "password, database) or unset it to use the embedded server."
            ) from exc
        if version < MIN_SERVER_VERSION:
            raise SetupError(
                f"PostgreSQL {version // 10000} is too old; deskpilot needs 15 or newer. "
                "Upgrade the server or unset DATABASE_URL to use the embedded PostgreSQL 18."
            )
        if not has_vector:
            raise SetupError(
                "the PostgreSQL server has no 'vector' extension available. Install pgvector "
                "(e.g. the postgresql-NN-pgvector package, or a managed service that offers it) "
                "or unset DATABASE_URL to use the embedded server, which bundles it."
            )

    @asynccontextmanager
    async def tenant_session(self, *, tenant: TenantContext) -> AsyncIterator[AsyncSession]:
        """One unit of work for one tenant: commits on success, rolls back on error."""
        async with self._session(APP_ROLE, tenant.tenant_id) as session:
            yield session

    @asynccontextmanager
    async def claimed_session(self, *, claimed_tenant_id: str) -> AsyncIterator[AsyncSession]:
        """A session bound to a tenant that is named but not yet resolved into a context: the
        tenant a presented key names, or the one an operator command targets.

        The claim is not trusted: it only narrows what the session can see (RLS), so a forged
        claim finds nothing that the claimed tenant does not own.
        """
        async with self._session(APP_ROLE, claimed_tenant_id) as session:
            yield session

    @asynccontextmanager
    async def unbound_session(self) -> AsyncIterator[AsyncSession]:
        """The application role with no tenant bound: tenant-owned tables read as empty."""
        async with self._session(APP_ROLE, "") as session:
            yield session

    @asynccontextmanager
    async def dangerously_unscoped_session(self) -> AsyncIterator[AsyncSession]:
        """Operator role: sees every tenant. Only for platform-admin paths."""
        async with self._session(OPERATOR_ROLE, "") as session:
            yield session

    @asynccontextmanager
    async def unscoped_owner_connection(self) -> AsyncIterator[AsyncConnection]:
        """The connecting (table-owning) role in autocommit mode, for the run-time DDL that a
        component manages itself (e.g. a large knowledge base's own vector index, built with
        ``CREATE INDEX CONCURRENTLY``, which no transaction may wrap). Never for data."""
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    def dedicated(self) -> DedicatedConnection:
        """A pooled connection held by one long-lived user (the ledger writer) between uses;
        see ``DedicatedConnection``."""
        return DedicatedConnection(self.engine)

    def on_commit(self, hook: CommitHook) -> None:
        """Call ``hook`` with the tenants marked changed (``mark_changed``) after each commit."""
        self._commit_hooks.append(hook)

    @asynccontextmanager
    async def _session(self, role: str, tenant_id: str) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            session.info["db_role"] = role
            session.info["tenant_id"] = tenant_id
            async with session.begin():
                yield session
            changed = frozenset(session.info.get("changed_tenants", ()))
        if changed:
            for hook in self._commit_hooks:
                await hook(changed)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


class DedicatedConnection:
    """One pooled connection kept checked out for a single user that runs one statement at a
    time on the hottest path (the ledger writer): no pool checkout and return per use.

    Statements run on the driver (asyncpg) connection outside any explicit transaction, so
    each is its own transaction, and nothing session-level is ever set: such a statement must
    bind its role and tenant itself, transaction-locally (the ledger's function does). After an
    error that leaves the connection's state unknown (connection lost, cancelled mid-statement)
    the caller ``discard``s it and the next use checks out a fresh one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._driver: Any = None

    async def driver(self) -> Any:
        if self._conn is None:
            conn = await self._engine.connect()
            try:
                self._driver = (await conn.get_raw_connection()).driver_connection
            except BaseException:
                await asyncio.shield(conn.invalidate())
                raise
            self._conn = conn
        return self._driver

    async def discard(self) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await asyncio.shield(conn.invalidate())

    async def close(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await conn.close()
