"""``deskpilot config``: a tenant's layered configuration (platform < tier < tenant)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from deskpilot.cli._common import JsonOpt, TenantOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, settings_lines, value_text
from deskpilot.cli._patch import PathArg, ValueArg, lookup, patch_for, set_patch
from deskpilot.platform import Platform
from deskpilot.tenancy import ConfigView

app = typer.Typer(
    help="Show and change a tenant's configuration overrides (as the operator: every section, "
    "including operator-managed limits such as keys.*).",
    no_args_is_help=True,
)


async def _view(platform: Platform, tenant: str) -> ConfigView:
    return await (await admin(platform).on_tenant(tenant)).config.view()


async def _patch(platform: Platform, tenant: str, patch: dict[str, Any]) -> ConfigView:
    return await (await admin(platform).on_tenant(tenant)).config.patch(patch)


@app.command("show")
@reports_errors
def show(
    tenant: TenantOpt,
    layers: Annotated[
        bool, typer.Option("--layers", help="Also show the platform, tier and tenant layers.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the effective configuration (secrets redacted)."""
    view = run(lambda p: _view(p, tenant))
    if as_json:
        summary = {"tenant_id", "tier", "revision", "effective"}
        emit_json(view if layers else view.model_dump(mode="json", include=summary))
        return
    typer.echo(f"tenant {view.tenant_id} (tier {view.tier}), config revision {view.revision}")
    if layers:
        for title, layer in (
            ("platform defaults", view.platform),
            (f"tier {view.tier}", view.tier_layer),
            ("tenant overrides", view.overrides),
        ):
            typer.echo(f"{title}:")
            typer.echo(settings_lines(layer, indent="  "))
        typer.echo("effective:")
        typer.echo(settings_lines(view.effective, indent="  "))
        return
    typer.echo(settings_lines(view.effective))


@app.command("set", context_settings={"ignore_unknown_options": True})  # VALUE may be -1
@reports_errors
def set_(tenant: TenantOpt, path: PathArg, value: ValueArg, as_json: JsonOpt = False) -> None:
    """Override one setting for a tenant, e.g. 'config set -t acme keys.max_active_keys 50'.

    The whole configuration is validated first; a refused value changes nothing.
    """
    parsed, patch = set_patch(path, value, unset_hint="deskpilot config unset")
    view = run(lambda p: _patch(p, tenant, patch))
    if as_json:
        emit_json(view)
        return
    typer.echo(
        f"{path} = {value_text(parsed)} for tenant {view.tenant_id} "
        f"(config revision {view.revision})"
    )


async def _unset(platform: Platform, tenant: str, path: str) -> tuple[bool, ConfigView]:
    view = await _view(platform, tenant)
    if not lookup(view.overrides, path)[0]:
        return False, view
    return True, await _patch(platform, tenant, patch_for(path, None))


@app.command("unset")
@reports_errors
def unset(tenant: TenantOpt, path: PathArg, as_json: JsonOpt = False) -> None:
    """Remove a tenant override; the tier's (or platform's) value applies again."""
    changed, view = run(lambda p: _unset(p, tenant, path))
    if as_json:
        emit_json(view)
        return
    found, effective = lookup(view.effective, path)
    now = value_text(effective) if found else "(not set)"
    if changed:
        typer.echo(f"unset {path} for tenant {view.tenant_id}; effective value now {now}")
    else:
        typer.echo(f"{path} is not overridden for tenant {view.tenant_id} (effective: {now})")
