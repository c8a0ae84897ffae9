"""``deskpilot keys``: create, list and revoke a tenant's API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from deskpilot.cli._common import JsonOpt, TenantOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, note, table, when
from deskpilot.core.context import Scope
from deskpilot.platform import Platform
from deskpilot.tenancy import ApiKey, CreatedApiKey, KeyCreate

app = typer.Typer(help="Create, list and revoke a tenant's API keys.", no_args_is_help=True)

ALL_SCOPE_NAMES = ", ".join(s.value for s in Scope)


def _scope_list(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()]


async def _create(
    platform: Platform, tenant: str, fields: dict[str, Any], scopes: list[str] | None
) -> CreatedApiKey:
    handle = await admin(platform).on_tenant(tenant)
    if scopes is None:  # every scope the tenant's configuration allows a key to hold
        scopes = [str(s) for s in handle.context.section("keys").get("allowed_scopes", Scope)]
    body = KeyCreate.model_validate({**fields, "scopes": scopes})
    return await handle.keys.create(body)


@app.command("create")
@reports_errors
def create(
    tenant: TenantOpt,
    name: Annotated[
        str, typer.Option(help="A label for the key, e.g. where it is used.")
    ] = "default",
    scopes: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated scopes from: {ALL_SCOPE_NAMES}. Omitted: every scope the "
            "tenant's configuration allows (keys.allowed_scopes; by default all of them, "
            "including tenant:admin).",
            show_default=False,
        ),
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(help="Expire the key after this many days (default: never).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print its secret once.

    The secret is printed alone on stdout (details and the warning go to stderr), so
    KEY=$(deskpilot keys create --tenant acme) captures just the key. With --json, stdout is
    {"key": {...}, "secret": "..."}, as the HTTP admin API returns it.
    """
    created = run(
        lambda p: _create(
            p, tenant, {"name": name, "expires_in_days": expires_in_days}, _scope_list(scopes)
        )
    )
    if as_json:
        emit_json(created)
        return
    key = created.key
    note(
        f"created key {key.key_id} ({key.name}) for tenant {key.tenant_id}; "
        f"scopes: {', '.join(s.value for s in key.scopes)}; "
        f"expires: {when(key.expires_at, never='never')}"
    )
    typer.echo(created.secret)
    note("warning: this secret is shown only now and cannot be retrieved again; store it now.")


def _status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


@app.command("list")
@reports_errors
def list_(
    tenant: TenantOpt,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a tenant's API keys (never their secrets)."""

    async def body(platform: Platform) -> list[ApiKey]:
        handle = await admin(platform).on_tenant(tenant)
        return await handle.keys.list(include_revoked=include_revoked)

    keys = run(body)
    if as_json:
        emit_json(keys)
        return
    if not keys:
        typer.echo(f"no keys for tenant {tenant}")
        note(f"create one: deskpilot keys create --tenant {tenant}")
        return
    now = datetime.now(UTC)
    typer.echo(
        table(
            ["KEY ID", "NAME", "PREFIX", "SCOPES", "STATUS", "CREATED", "EXPIRES"],
            [
                (
                    k.key_id,
                    k.name,
                    k.prefix,
                    ",".join(s.value for s in k.scopes),
                    _status(k, now),
                    when(k.created_at),
                    when(k.expires_at, never="never"),
                )
                for k in keys
            ],
        )
    )


@app.command("revoke")
@reports_errors
def revoke(
    tenant: TenantOpt,
    key_id: Annotated[str, typer.Argument(help="The key id, as 'keys list' shows it.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key; it stops working at once. Revoking a revoked key changes nothing."""

    async def body(platform: Platform) -> ApiKey:
        return await (await admin(platform).on_tenant(tenant)).keys.revoke(key_id)

    key = run(body)
    if as_json:
        emit_json(key)
        return
    typer.echo(
        f"revoked key {key.key_id} ({key.name}) of tenant {key.tenant_id} at {when(key.revoked_at)}"
    )
