"""``deskpilot usage report|top``: the same numbers as the ledger, as table, CSV or JSON."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from decimal import Decimal
from pathlib import Path

from deskpilot.core.context import OperatorContext
from deskpilot.metering import UsageEvent
from deskpilot.platform import Platform
from tests.cli.conftest import Invoke, cli_settings, json_out, ok, refused, slug


def record(home: Path, tenant: str, count: int, tokens: int) -> None:
    async def body() -> None:
        platform = await Platform.open(cli_settings(home), run_migrations=False)
        try:
            context = (await platform.admin(OperatorContext("test")).on_tenant(tenant)).context
            for _ in range(count):
                event = UsageEvent(
                    component="gateway",
                    operation="chat",
                    request_id=uuid.uuid4().hex,
                    provider="openai",
                    provider_model="gpt-4o",
                    input_tokens=tokens,
                    output_tokens=tokens,
                )
                await platform.meter.record(event, tenant=context)
        finally:
            await platform.close()

    asyncio.run(body())


def test_report_in_every_format(invoke: Invoke, cli_home: Path) -> None:
    tenant = slug("usage")
    ok(invoke("tenants", "create", tenant, "--name", "Usage", "--tier", "pro"))
    record(cli_home, tenant, 3, 1000)

    report = json_out(invoke("usage", "report", "--tenant", tenant, "--format", "json"))
    totals = report["usage"]["totals"]
    assert totals["events"] == 3
    assert totals["input_tokens"] == 3000
    # gpt-4o: $2.50 in / $10 out per million; pro tier bills 20% over cost
    assert Decimal(totals["provider_cost"]) == Decimal("0.0375")
    assert Decimal(totals["billed_amount"]) == Decimal("0.045")
    assert {q["dimension"] for q in report["quotas"]} >= {"tokens_per_period", "spend_per_period"}

    rows = list(
        csv.DictReader(
            io.StringIO(ok(invoke("usage", "report", "--tenant", tenant, "--format", "csv")).stdout)
        )
    )
    assert [(r["component"], r["model"], r["events"]) for r in rows] == [("gateway", "gpt-4o", "3")]

    plain = ok(invoke("usage", "report", "--tenant", tenant)).stdout
    assert "gpt-4o" in plain
    assert "tokens_per_period" in plain


def test_top_ranks_tenants(invoke: Invoke, cli_home: Path) -> None:
    small, big = slug("small"), slug("big")
    for tenant in (small, big):
        ok(invoke("tenants", "create", tenant, "--name", tenant))
    record(cli_home, small, 1, 10)
    record(cli_home, big, 1, 100_000)
    ranked = [t["tenant_id"] for t in json_out(invoke("usage", "top", "--format", "json"))]
    assert ranked.index(big) < ranked.index(small)


def test_report_of_unknown_tenant_is_refused(invoke: Invoke) -> None:
    assert "no tenant" in refused(invoke("usage", "report", "--tenant", "no-such-tenant"))
