"""``deskpilot tenants``: create, list, show, suspend, resume and delete tenants."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from deskpilot.cli._common import CliError, JsonOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, fields, note, table, when
from deskpilot.platform import Platform
from deskpilot.tenancy import PurgeReport, SuspendRequest, Tenant, TenantCreate, TenantStatus

app = typer.Typer(help="Create and manage tenants (customer organisations).", no_args_is_help=True)

SlugArg = Annotated[
    str,
    typer.Argument(
        help=TenantCreate.model_fields["tenant_id"].description or "Tenant slug.",
        show_default=False,
    ),
]
PAGE = 500


def _show(tenant: Tenant) -> str:
    return fields(
        [
            ("tenant", tenant.tenant_id),
            ("name", tenant.display_name),
            ("tier", tenant.tier),
            ("status", tenant.status.value),
            *([("reason", tenant.status_reason)] if tenant.status_reason else []),
            ("billing anchor day", tenant.billing_anchor_day),
            ("created", when(tenant.created_at)),
            ("updated", when(tenant.updated_at)),
        ]
    )


def _output(tenant: Tenant, as_json: bool, headline: str) -> None:
    if as_json:
        emit_json(tenant)
        return
    typer.echo(headline)
    typer.echo(_show(tenant))


@app.command("create")
@reports_errors
def create(
    slug: SlugArg,
    name: Annotated[str, typer.Option("--name", help='Display name, e.g. "Acme Corp".')],
    tier: Annotated[
        str, typer.Option(help="Tier: free, pro, enterprise, or any 'deskpilot tiers list' shows.")
    ] = "free",
    billing_anchor_day: Annotated[
        int, typer.Option(help="Day of the month (1-28) the billing period starts.")
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant; then create its first API key with 'deskpilot keys create'."""
    body = TenantCreate(
        tenant_id=slug, display_name=name, tier=tier, billing_anchor_day=billing_anchor_day
    )
    tenant = run(lambda p: admin(p).create_tenant(body))
    _output(tenant, as_json, f"created tenant {tenant.tenant_id}")
    if not as_json:
        note(f"next: deskpilot keys create --tenant {tenant.tenant_id}")


async def _all_tenants(
    platform: Platform, status: TenantStatus | None, tier: str | None
) -> list[Tenant]:
    found: list[Tenant] = []
    after: str | None = None
    while True:
        page = await admin(platform).list_tenants(status=status, tier=tier, after=after, limit=PAGE)
        found.extend(page)
        if len(page) < PAGE:
            return found
        after = page[-1].tenant_id


@app.command("list")
@reports_errors
def list_(
    status: Annotated[TenantStatus | None, typer.Option(help="Only tenants in this state.")] = None,
    tier: Annotated[str | None, typer.Option(help="Only tenants on this tier.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tenants (all of them, in slug order)."""
    tenants = run(lambda p: _all_tenants(p, status, tier))
    if as_json:
        emit_json(tenants)
        return
    if not tenants:
        typer.echo("no tenants")
        return
    typer.echo(
        table(
            ["TENANT", "NAME", "TIER", "STATUS", "CREATED"],
            [
                (t.tenant_id, t.display_name, t.tier, t.status.value, when(t.created_at))
                for t in tenants
            ],
        )
    )


@app.command("show")
@reports_errors
def show(slug: SlugArg, as_json: JsonOpt = False) -> None:
    """Show one tenant."""
    tenant = run(lambda p: admin(p).get_tenant(slug))
    _output(tenant, as_json, f"tenant {tenant.tenant_id}")


@app.command("suspend")
@reports_errors
def suspend(
    slug: SlugArg,
    reason: Annotated[
        str, typer.Option(help="Why; shown to the tenant's callers and kept in the audit log.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Suspend a tenant: its API keys are refused until it is resumed. Data is kept."""
    body = SuspendRequest(reason=reason.strip())  # the HTTP API's rules for a reason
    tenant = run(lambda p: admin(p).set_status(slug, TenantStatus.SUSPENDED, reason=body.reason))
    _output(tenant, as_json, f"suspended tenant {tenant.tenant_id}")


@app.command("resume")
@reports_errors
def resume(slug: SlugArg, as_json: JsonOpt = False) -> None:
    """Resume a suspended tenant: its API keys work again."""
    tenant = run(lambda p: admin(p).set_status(slug, TenantStatus.ACTIVE))
    _output(tenant, as_json, f"resumed tenant {tenant.tenant_id}")


async def _delete(platform: Platform, slug: str, *, confirmed: bool) -> PurgeReport:
    tenant = await admin(platform).get_tenant(slug)  # not found: fail before asking
    if not confirmed:
        question = (
            f"Delete tenant {tenant.tenant_id} ({tenant.display_name}) and all of its data? "
            "This cannot be undone"
        )
        if not await asyncio.to_thread(typer.confirm, question, err=True):
            raise CliError("not deleted")
    return await admin(platform).delete_tenant(slug)


@app.command("delete")
@reports_errors
def delete(
    slug: SlugArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a tenant and purge all of its data (keys stop working at once). Re-running it
    finishes an interrupted deletion."""
    report = run(lambda p: _delete(p, slug, confirmed=yes))
    if as_json:
        emit_json(report)
        return
    typer.echo(
        f"deleted tenant {report.tenant_id}; derived stores purged by {report.purge_steps} "
        "step(s); rows deleted:"
    )
    typer.echo(table(["TABLE", "ROWS"], sorted(report.rows_deleted.items())))
