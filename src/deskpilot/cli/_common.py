"""What every command shares: settings, the operator identity, the schema check, opening the
Platform around one coroutine, and turning expected failures into ``error: ...`` on stderr with
exit status 1 (never a traceback)."""

from __future__ import annotations

import asyncio
import functools
import getpass
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

import typer
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from deskpilot.core.context import OperatorContext
from deskpilot.core.db import Database
from deskpilot.core.errors import DeskpilotError, FieldError, SetupError
from deskpilot.core.logging import configure_logging, redact_text
from deskpilot.core.migrate import alembic_config, current_revision, head_revision
from deskpilot.core.settings import Settings
from deskpilot.platform import AdminHandle, Platform

P = ParamSpec("P")
T = TypeVar("T")

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON document on stdout, nothing else.")
]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="The tenant's slug.")]


class CliError(Exception):
    """An expected failure, reported as ``error: <detail>`` plus one line per field."""

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    return tuple(
        FieldError(".".join(str(p) for p in err["loc"]) or "(input)", err["msg"])
        for err in exc.errors(include_input=False, include_url=False)
    )


def fail(detail: str, errors: Sequence[FieldError] = ()) -> typer.Exit:
    """Print the error to stderr; return the exit to raise."""
    typer.echo(f"error: {redact_text(detail)}", err=True)
    for error in errors:
        typer.echo(f"  {error.path}: {redact_text(error.message)}", err=True)
    return typer.Exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except (CliError, DeskpilotError) as exc:
        raise fail(exc.detail, exc.errors) from None
    except SetupError as exc:
        raise fail(str(exc)) from None
    except ValidationError as exc:
        raise fail("invalid input", field_errors(exc)) from None
    except (OperationalError, InterfaceError) as exc:
        raise fail(
            f"the database failed mid-command: {exc.orig}. Run 'deskpilot doctor' to check it."
        ) from None


def reports_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Decorate a command so expected failures exit 1 with a message (typer reads the wrapped
    signature through ``__wrapped__``)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        with reported_errors():
            command(*args, **kwargs)

    return wrapper


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise CliError("invalid settings (environment or .env)", field_errors(exc)) from exc


def quiet_logging(settings: Settings) -> None:
    """Logs go to stderr, warnings and worse only: stdout belongs to the command's output."""
    level = "ERROR" if settings.log_level == "ERROR" else "WARNING"
    configure_logging(level=level, json=settings.log_json)


def operator() -> OperatorContext:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        user = "unknown"
    return OperatorContext(principal=f"cli:{user}")


def admin(platform: Platform) -> AdminHandle:
    return platform.admin(operator())


@dataclass(frozen=True, slots=True)
class SchemaState:
    current: str | None
    head: str | None
    known: bool  # ``current`` is a revision this version of deskpilot ships

    @property
    def problem(self) -> str | None:
        if self.current == self.head:
            return None
        if self.current is None or self.known:
            at = self.current or "none (empty database)"
            return f"database schema is at {at}, code expects {self.head}: run 'deskpilot migrate'"
        return (
            f"database schema is at {self.current}, which this version of deskpilot does not "
            f"know (its newest is {self.head}): upgrade deskpilot"
        )


async def schema_state(db: Database) -> SchemaState:
    current = await current_revision(db)
    known = False
    if current is not None:
        try:
            known = ScriptDirectory.from_config(alembic_config()).get_revision(current) is not None
        except CommandError:
            known = False
    return SchemaState(current, head_revision(), known)


@asynccontextmanager
async def open_platform(settings: Settings, *, migrate: bool) -> AsyncIterator[Platform]:
    """The Platform, migrated (``migrate``) or checked to be at the code's schema revision."""
    platform = await Platform.open(settings, run_migrations=migrate)
    try:
        if not migrate:
            problem = (await schema_state(platform.resources.db)).problem
            if problem is not None:
                raise CliError(problem)
        yield platform
    finally:
        await platform.close()


def run(body: Callable[[Platform], Awaitable[T]]) -> T:
    """Open the Platform, run ``body`` on it and close it, in one event loop.

    An embedded database is migrated automatically; an external one must already be at the
    code's revision (``deskpilot migrate`` changes a shared database, so only on request).
    """
    settings = load_settings()
    quiet_logging(settings)

    async def main() -> T:
        async with open_platform(settings, migrate=settings.embedded) as platform:
            return await body(platform)

    return asyncio.run(main())
