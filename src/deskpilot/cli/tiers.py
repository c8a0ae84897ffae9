"""``deskpilot tiers``: the tier layer of every tenant's configuration."""

from __future__ import annotations

from typing import Annotated

import typer

from deskpilot.cli._common import JsonOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, fields, settings_lines, table, value_text, when
from deskpilot.cli._patch import PathArg, ValueArg, patch_for, set_patch
from deskpilot.tenancy import Tier, TierUpdate

app = typer.Typer(
    help="List tiers and change their configuration layer (applies to every tenant on the tier).",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Tier name, e.g. free, pro, enterprise.")]


def _show(tier: Tier) -> str:
    head = fields(
        [
            ("tier", tier.name),
            ("name", tier.display_name),
            ("description", tier.description or "-"),
            ("updated", when(tier.updated_at)),
        ]
    )
    return f"{head}\nconfig:\n{settings_lines(tier.config, indent='  ')}"


@app.command("list")
@reports_errors
def list_(as_json: JsonOpt = False) -> None:
    """List tiers."""
    tiers = run(lambda p: admin(p).list_tiers())
    if as_json:
        emit_json(tiers)
        return
    typer.echo(
        table(
            ["TIER", "NAME", "DESCRIPTION"],
            [(t.name, t.display_name, t.description) for t in tiers],
        )
    )


@app.command("show")
@reports_errors
def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show a tier and its configuration layer."""
    tier = run(lambda p: admin(p).get_tier(name))
    if as_json:
        emit_json(tier)
    else:
        typer.echo(_show(tier))


@app.command("set", context_settings={"ignore_unknown_options": True})  # VALUE may be -1
@reports_errors
def set_(name: NameArg, path: PathArg, value: ValueArg, as_json: JsonOpt = False) -> None:
    """Set one setting in a tier's layer, e.g. 'tiers set pro keys.max_active_keys 50'.

    Tenants on the tier see the change at once, unless they override the setting.
    """
    parsed, patch = set_patch(path, value, unset_hint="deskpilot tiers unset")
    tier = run(lambda p: admin(p).update_tier(name, TierUpdate(config=patch)))
    if as_json:
        emit_json(tier)
    else:
        typer.echo(f"tier {tier.name}: {path} = {value_text(parsed)}")


@app.command("unset")
@reports_errors
def unset(name: NameArg, path: PathArg, as_json: JsonOpt = False) -> None:
    """Remove a setting from a tier's layer; the platform default applies again."""
    patch = patch_for(path, None)
    tier = run(lambda p: admin(p).update_tier(name, TierUpdate(config=patch)))
    if as_json:
        emit_json(tier)
    else:
        typer.echo(f"tier {tier.name}: {path} removed from the tier layer")
