"""``deskpilot provider-keys``: a tenant's own provider keys (bring-your-own keys)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from deskpilot.cli._common import CliError, JsonOpt, TenantOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, note, table, when
from deskpilot.cli.deployments import env_value
from deskpilot.gateway import ProviderKeyView, families_in_file
from deskpilot.platform import Platform

app = typer.Typer(
    help="List, set and remove a tenant's own provider keys (enterprise tier).",
    no_args_is_help=True,
)

FamilyArg = Annotated[str, typer.Argument(help="Key family, e.g. openai, azure, anthropic.")]


def _read_key(api_key_env: str | None) -> str:
    if api_key_env is not None:
        return env_value(api_key_env, "the provider key")
    if sys.stdin.isatty():
        return str(typer.prompt("provider key", hide_input=True))
    key = sys.stdin.read().rstrip("\r\n")
    if not key:
        raise CliError("no key on standard input: pipe it in, or use --api-key-env VARIABLE")
    return key


@app.command("list")
@reports_errors
def list_(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """List a tenant's own provider keys: family and hint, never the key."""

    async def body(platform: Platform) -> list[ProviderKeyView]:
        return await (await admin(platform).on_tenant(tenant)).provider_keys.list()

    keys = run(body)
    if as_json:
        emit_json(keys)
        return
    if not keys:
        typer.echo(f"no provider keys for tenant {tenant}")
        return
    typer.echo(
        table(
            ["FAMILY", "HINT", "UPDATED", "BY"],
            [(k.family, k.hint, when(k.updated_at), k.created_by) for k in keys],
        )
    )


@app.command("set")
@reports_errors
def set_(
    tenant: TenantOpt,
    family: FamilyArg,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Read the key from this environment variable instead of standard input.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The deployments file the server runs with, so that its "
            "key families are known here too.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store (or replace) a tenant's key for one family. The key is read from standard input
    (or --api-key-env), never from an argument, so it stays out of shell history and ps."""
    key = _read_key(api_key_env)
    in_file = families_in_file(config) if config is not None else frozenset()

    async def body(platform: Platform) -> ProviderKeyView:
        platform.gateway_store.use_known_families(lambda: in_file)
        handle = await admin(platform).on_tenant(tenant)
        return await handle.provider_keys.set(family, key)

    view = run(body)
    if as_json:
        emit_json(view)
        return
    typer.echo(f"stored the {view.family} key {view.hint} for tenant {tenant}")
    note("running servers use it within a second")


@app.command("remove")
@reports_errors
def remove(tenant: TenantOpt, family: FamilyArg) -> None:
    """Remove a tenant's key for one family; the operator's key serves it again (unless the
    tenant's gateway.byo_keys is required)."""

    async def body(platform: Platform) -> None:
        await (await admin(platform).on_tenant(tenant)).provider_keys.delete(family)

    run(body)
    typer.echo(f"removed the {family} key of tenant {tenant}")
