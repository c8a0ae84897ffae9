"""The ``deskpilot`` command line. Operator actions go straight to the database through the
``Platform`` (never over HTTP), as ``cli:<login name>`` in the audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from deskpilot import __version__
from deskpilot.cli import (
    config,
    deployments,
    doctor,
    evaluate,
    kb,
    keys,
    migrate,
    provider_keys,
    secret_keys,
    serve,
    tenants,
    tiers,
    usage,
)

app = typer.Typer(
    name="deskpilot",
    help="Multi-tenant AI core for IT service management: serve the API and administer tenants.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a rich traceback with locals could show secrets
    rich_markup_mode="markdown",  # docstrings wrap at 100 columns; markdown rejoins the lines
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deskpilot {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Settings come from the environment (and .env): DATABASE_URL (unset: embedded PostgreSQL
    under DESKPILOT_HOME), REDIS_URL, DESKPILOT_ADMIN_TOKEN, DESKPILOT_SECRET_KEY,
    DESKPILOT_HOME."""


app.command("serve")(serve.serve)
app.command("migrate")(migrate.migrate)
app.command("doctor")(doctor.doctor)
app.add_typer(tenants.app, name="tenants")
app.add_typer(keys.app, name="keys")
app.add_typer(config.app, name="config")
app.add_typer(tiers.app, name="tiers")
app.add_typer(usage.app, name="usage")
app.add_typer(kb.app, name="kb")
app.command("ingest")(kb.ingest)
app.command("ask")(kb.ask)
app.add_typer(evaluate.app, name="eval")
app.add_typer(deployments.app, name="deployments")
app.add_typer(provider_keys.app, name="provider-keys")
app.add_typer(secret_keys.app, name="secrets")


def main() -> None:
    app()


__all__ = ["app", "main"]
