"""``deskpilot doctor``: check the deployment, one line per check, saying how to fix failures.

Every check catches its own failures: doctor reports an unreachable database, it does not crash
on one. Exit status 1 if any check fails.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import typer
from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url

from deskpilot.cli._common import CliError, load_settings, quiet_logging, schema_state
from deskpilot.core.db import APP_ROLE, MIN_SERVER_VERSION, OPERATOR_ROLE, Database, async_url
from deskpilot.core.errors import SetupError
from deskpilot.core.logging import redact_text
from deskpilot.core.migrate import migrate
from deskpilot.core.secrets import key_id, parse_master_key
from deskpilot.core.settings import Settings

CONNECT_TIMEOUT = 10.0
DB_CHECKS = ("pgvector", "schema", "row-level security roles")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {redact_text(self.detail)}"


Report = Callable[[Check], None]


def _where(settings: Settings) -> str:
    if settings.database_url is None:
        return f"embedded, data in {settings.pgdata}"
    try:
        url = make_url(async_url(settings.database_url.get_secret_value()))
    except Exception:
        return "DATABASE_URL"
    host = url.host or url.query.get("host") or "localhost"  # ?host=/dir: a Unix socket
    return f"{host}:{url.port or 5432}/{url.database or ''}"


async def _open(settings: Settings) -> Database:
    """A single-connection Database without the startup checks: doctor runs them one by one."""
    return await Database.connect(
        settings, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT}
    )


async def _check_server(db: Database, settings: Settings) -> Check:
    async with db.engine.connect() as conn:
        version = str((await conn.execute(text("SHOW server_version"))).scalar_one())
        number = int((await conn.execute(text("SHOW server_version_num"))).scalar_one())
    where = _where(settings)
    if number < MIN_SERVER_VERSION:
        return Check(
            "database",
            False,
            f"PostgreSQL {version} ({where}) is too old: deskpilot needs 15 or newer; upgrade "
            "it, or unset DATABASE_URL to use the embedded PostgreSQL",
        )
    return Check("database", True, f"PostgreSQL {version} ({where})")


async def _check_pgvector(db: Database) -> Check:
    query = text(
        "SELECT default_version, installed_version FROM pg_available_extensions "
        "WHERE name = 'vector'"
    )
    async with db.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return Check(
            "pgvector",
            False,
            "not available on the server: install pgvector (e.g. the postgresql-NN-pgvector "
            "package) or unset DATABASE_URL to use the embedded server, which bundles it",
        )
    if row.installed_version is None:
        return Check(
            "pgvector",
            False,
            f"available ({row.default_version}) but not installed in this database: "
            "run 'deskpilot migrate'",
        )
    return Check("pgvector", True, f"{row.installed_version} installed")


async def _migrate_embedded(db: Database, settings: Settings) -> str | None:
    """Like every command, doctor migrates the embedded database; returns what went wrong."""
    if not settings.embedded:
        return None
    try:
        await migrate(db)
    except Exception as exc:
        return f"migrating the embedded database failed: {type(exc).__name__}: {exc}"
    return None


async def _check_schema(db: Database, migration_failure: str | None) -> Check:
    if migration_failure is not None:
        return Check("schema", False, migration_failure)
    state = await schema_state(db)
    if state.problem is not None:
        return Check("schema", False, state.problem)
    return Check("schema", True, f"at {state.current} (head)")


async def _check_roles(db: Database) -> Check:
    query = text(
        "SELECT rolname, rolsuper, rolbypassrls, pg_has_role(current_user, oid, 'MEMBER') AS member"
        " FROM pg_roles WHERE rolname IN (:app, :operator)"
    )
    async with db.engine.connect() as conn:
        result = await conn.execute(query, {"app": APP_ROLE, "operator": OPERATOR_ROLE})
        rows = {r.rolname: r for r in result}
        user = str((await conn.execute(text("SELECT current_user"))).scalar_one())
    name = "row-level security roles"
    missing = [r for r in (APP_ROLE, OPERATOR_ROLE) if r not in rows]
    if missing:
        return Check(name, False, f"role(s) {', '.join(missing)} missing: run 'deskpilot migrate'")
    app = rows[APP_ROLE]
    if app.rolsuper or app.rolbypassrls:
        return Check(
            name,
            False,
            f"{APP_ROLE} can bypass row-level security: ALTER ROLE {APP_ROLE} NOSUPERUSER "
            "NOBYPASSRLS",
        )
    outside = [r for r in (APP_ROLE, OPERATOR_ROLE) if not rows[r].member]
    if outside:
        grants = "; ".join(f"GRANT {r} TO {user}" for r in outside)
        return Check(name, False, f"{user} cannot switch to {', '.join(outside)}: {grants}")
    return Check(
        name,
        True,
        f"{APP_ROLE} (no superuser, no BYPASSRLS) and {OPERATOR_ROLE} exist; {user} uses both",
    )


async def _database_checks(settings: Settings, report: Report) -> None:
    db: Database | None = None
    try:
        db = await _open(settings)
    except SetupError as exc:
        report(Check("database", False, str(exc)))
    except Exception as exc:
        report(Check("database", False, f"cannot open the database ({_where(settings)}): {exc}"))
    if db is not None:
        try:
            await _connected_checks(db, settings, report)
        finally:
            await db.close()
        return
    for name in DB_CHECKS:
        report(Check(name, False, "not checked: fix the database connection first"))


async def _connected_checks(db: Database, settings: Settings, report: Report) -> None:
    try:
        report(await _check_server(db, settings))
    except Exception as exc:
        report(
            Check(
                "database",
                False,
                f"cannot connect to PostgreSQL ({_where(settings)}): {exc}. Check DATABASE_URL "
                "(host, port, user, password, database) or unset it to use the embedded server",
            )
        )
        for name in DB_CHECKS:
            report(Check(name, False, "not checked: fix the database connection first"))
        return
    migration_failure = await _migrate_embedded(db, settings)
    checks: list[tuple[str, Callable[[], Awaitable[Check]]]] = [
        ("pgvector", lambda: _check_pgvector(db)),
        ("schema", lambda: _check_schema(db, migration_failure)),
        ("row-level security roles", lambda: _check_roles(db)),
    ]
    for name, check in checks:
        try:
            report(await check())
        except Exception as exc:
            report(Check(name, False, f"check failed: {type(exc).__name__}: {exc}"))


async def _check_redis(settings: Settings) -> Check:
    if settings.redis_url is None:
        return Check(
            "redis",
            True,
            "not configured: quotas are checked in PostgreSQL; revoked keys reach other "
            "processes within a second",
        )
    from redis.asyncio import Redis

    client = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=CONNECT_TIMEOUT,
    )
    try:
        await client.ping()
        info = await client.info("server")
        policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy")
    except Exception as exc:
        return Check(
            "redis",
            False,
            f"cannot reach Redis at REDIS_URL: {exc}. Start Redis, fix REDIS_URL, or unset it to "
            "check quotas in PostgreSQL instead",
        )
    finally:
        await client.aclose()
    version = info.get("redis_version", "unknown version")
    if policy not in ("noeviction", None):
        return Check(
            "redis",
            False,
            f"Redis {version} evicts keys (maxmemory-policy {policy}); quota state must not be "
            "evicted: set maxmemory-policy noeviction",
        )
    return Check("redis", True, f"PING ok (Redis {version}, maxmemory-policy noeviction)")


def _check_token(settings: Settings) -> Check:
    if settings.admin_token is not None:
        return Check("operator token", True, "from DESKPILOT_ADMIN_TOKEN")
    path = settings.admin_token_file
    if not path.exists():
        return Check("operator token", True, f"not created yet; generated into {path} on start")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check("operator token", False, f"{path} is readable by others: chmod 600 {path}")
    return Check("operator token", True, f"in {path}")


def _check_secret_key(settings: Settings) -> Check:
    old = settings.secret_keys_old
    older = ""
    if old is not None:
        count = sum(1 for part in old.get_secret_value().split(",") if part.strip())
        older = f"; {count} old key(s) in DESKPILOT_SECRET_KEYS_OLD: run 'deskpilot secrets rotate'"
    if settings.secret_key is not None:
        current = key_id(parse_master_key(settings.secret_key.get_secret_value()))
        return Check("secret key", True, f"from DESKPILOT_SECRET_KEY (key {current}){older}")
    path = settings.secret_key_file
    if not path.exists():
        return Check(
            "secret key",
            True,
            f"not created yet; generated into {path} on start (back it up; with several hosts "
            "set DESKPILOT_SECRET_KEY instead)",
        )
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check("secret key", False, f"{path} is readable by others: chmod 600 {path}")
    try:
        current = key_id(parse_master_key(path.read_text()))
    except ValueError:
        return Check(
            "secret key",
            False,
            f"{path} does not hold a usable key: restore it from your backup, or set "
            "DESKPILOT_SECRET_KEY to the key the stored credentials were encrypted with",
        )
    return Check("secret key", True, f"in {path} (key {current}; back it up){older}")


async def _diagnose(report: Report) -> None:
    try:
        settings = load_settings()
    except CliError as exc:
        problems = "; ".join(f"{e.path}: {e.message}" for e in exc.errors)
        report(Check("settings", False, f"{exc.detail}: {problems}"))
        return
    quiet_logging(settings)
    report(Check("settings", True, f"DESKPILOT_HOME={settings.home}"))
    await _database_checks(settings, report)
    report(await _check_redis(settings))
    report(_check_token(settings))
    report(_check_secret_key(settings))
    report(Check("llm providers", True, "none configured; features that need an LLM will say so"))


def doctor() -> None:
    """Check the deployment: database, pgvector, schema, row-level security roles, Redis,
    operator token, secret key, LLM providers. Exit status 1 if any check fails."""
    failures = 0

    def report(check: Check) -> None:
        nonlocal failures
        failures += not check.ok
        typer.echo(check.line())

    asyncio.run(_diagnose(report))
    raise typer.Exit(1 if failures else 0)
