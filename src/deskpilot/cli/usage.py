"""``deskpilot usage``: usage and quota reports, per tenant or across tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from deskpilot.cli._common import CliError, TenantOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, note, table
from deskpilot.metering import (
    TOTAL_COLUMNS,
    TenantUsage,
    UsageSummary,
    csv_text,
    summary_columns,
)
from deskpilot.platform import Platform
from deskpilot.quotas import QuotaStatus, period_bounds, plain

app = typer.Typer(help="Usage and quota reports.", no_args_is_help=True)


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")]
FromOpt = Annotated[
    datetime | None,
    typer.Option(
        "--from",
        help="Start (inclusive, UTC unless an offset is given). Default: the current "
        "billing period's start (report) or today (top).",
        show_default=False,
    ),
]
ToOpt = Annotated[
    datetime | None,
    typer.Option(
        "--to",
        help="End (exclusive). Default: the period's end (report) or one day after --from (top).",
        show_default=False,
    ),
]
GranularityOpt = Annotated[str, typer.Option(help="Buckets: day or hour.")]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


async def _report(
    platform: Platform, tenant: str, start: datetime | None, end: datetime | None, granularity: str
) -> tuple[UsageSummary, list[QuotaStatus]]:
    handle = await admin(platform).on_tenant(tenant)
    period_start, period_end = period_bounds(handle.context.billing_anchor_day, datetime.now(UTC))
    if granularity not in ("day", "hour"):
        raise CliError("--granularity must be day or hour")
    summary = await handle.usage.summary(
        start or period_start,
        end or period_end,
        granularity=granularity,  # type: ignore[arg-type]
        group_by=("bucket", "component", "model"),
    )
    return summary, await handle.quota_status()


@app.command("report")
@reports_errors
def report(
    tenant: TenantOpt,
    start: FromOpt = None,
    end: ToOpt = None,
    granularity: GranularityOpt = "day",
    output: FormatOpt = Format.TABLE,
) -> None:
    """A tenant's usage by day (or hour), component and model, with totals and quota status."""
    summary, quotas = run(lambda p: _report(p, tenant, _utc(start), _utc(end), granularity))
    if output is Format.JSON:
        emit_json({"usage": summary, "quotas": quotas})
        return
    columns = summary_columns(summary.group_by)
    if output is Format.CSV:
        typer.echo(csv_text(summary.rows, columns), nl=False)
        return
    typer.echo(
        f"usage of {tenant} from {summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC"
    )
    shown = [c for c in columns if c not in ("errors", "cached_tokens")]
    rows = [[_cell(r.model_dump(mode="json").get(c)) for c in shown] for r in summary.rows]
    typer.echo(table([c.upper() for c in shown], rows))
    totals = summary.totals.model_dump(mode="json")
    typer.echo("total: " + ", ".join(f"{c}={totals[c]}" for c in TOTAL_COLUMNS))
    if quotas:
        typer.echo("")
        typer.echo(
            table(
                ["QUOTA", "USED", "LIMIT", "PERCENT", "STATE", "RESETS"],
                [
                    [
                        q.dimension.value,
                        plain(q.used),
                        plain(q.limit),
                        f"{q.percent:.1f}%",
                        q.state.value,
                        f"{q.window_end:%Y-%m-%d %H:%M}" if q.window_end else "-",
                    ]
                    for q in quotas
                ],
            )
        )


@app.command("top")
@reports_errors
def top(
    start: FromOpt = None,
    end: ToOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many tenants.")] = 20,
    output: FormatOpt = Format.TABLE,
) -> None:
    """Every tenant's usage in the range, top spenders (billed amount) first."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = _utc(start) or today
    last = _utc(end) or first + timedelta(days=1)

    async def body(platform: Platform) -> list[TenantUsage]:
        return await admin(platform).usage.usage_by_tenant(first, last, limit=limit)

    tenants = run(body)
    if output is Format.JSON:
        emit_json(tenants)
    elif output is Format.CSV:
        typer.echo(csv_text(tenants, ["tenant_id", *TOTAL_COLUMNS]), nl=False)
    else:
        note(f"usage from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC")
        columns = [
            "tenant_id",
            "events",
            "input_tokens",
            "output_tokens",
            "provider_cost",
            "billed_amount",
        ]
        rows = [[_cell(t.model_dump(mode="json")[c]) for c in columns] for t in tenants]
        typer.echo(table([c.upper() for c in columns], rows))


def _cell(value: object) -> str:
    return "-" if value is None else str(value)
