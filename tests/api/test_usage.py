"""Usage reports over HTTP: a tenant's own usage and quota status, CSV export, the operator's
cross-tenant report, and quota refusals rendered as 429."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import APIRouter, Response

from deskpilot.app import create_app
from deskpilot.core.context import OperatorContext, Scope
from deskpilot.deps import Tenant
from deskpilot.metering import UsageEvent
from deskpilot.platform import Platform
from deskpilot.quotas import Dimension
from deskpilot.tenancy import KeyCreate
from tests.api.support import assert_problem
from tests.conftest import TenantFixture, new_tenant


def _event(request_id: str, *, tokens: int = 1000, model: str = "gpt-4o-mini") -> UsageEvent:
    return UsageEvent(
        component="gateway",
        operation="chat",
        request_id=request_id,
        provider="openai",
        provider_model=model,
        model_alias="default",
        input_tokens=tokens,
        output_tokens=tokens // 2,
    )


async def _record(platform: Platform, tenant: TenantFixture, n: int, **kw: object) -> None:
    for _ in range(n):
        await platform.meter.record(_event(uuid.uuid4().hex, **kw), tenant=tenant.context)  # type: ignore[arg-type]


async def test_own_usage_has_totals_rows_and_quotas(
    client: httpx.AsyncClient, platform: Platform, tenant_a: TenantFixture
) -> None:
    await _record(platform, tenant_a, 3)
    response = await client.get("/v1/usage", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant_id"] == tenant_a.slug
    totals = body["usage"]["totals"]
    assert totals["events"] == 3
    assert totals["input_tokens"] == 3000
    # gpt-4o-mini list prices, pro tier markup 20%: billed = cost * 1.2, exact strings
    cost = Decimal(totals["provider_cost"])
    assert Decimal(totals["billed_amount"]) == cost * Decimal("1.2")
    assert cost > 0
    quotas = {q["quota"]: q for q in body["quotas"]}
    assert Decimal(quotas["tokens_per_period"]["used"]) == 4500
    assert quotas["spend_per_period"]["limit"] == "500"
    assert {r["model"] for r in body["usage"]["rows"]} == {"gpt-4o-mini"}


async def test_usage_csv_export_and_ledger_paging(
    client: httpx.AsyncClient, platform: Platform, tenant_a: TenantFixture
) -> None:
    await _record(platform, tenant_a, 5)
    summary = await client.get("/v1/usage?format=csv&group_by=model", headers=tenant_a.headers)
    assert summary.status_code == 200
    assert summary.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(summary.text)))
    assert [r["model"] for r in rows] == ["gpt-4o-mini"]
    assert rows[0]["events"] == "5"

    seen: list[str] = []
    after = None
    while True:
        query = "/v1/usage/events?limit=2" + (f"&after={after}" if after else "")
        page = (await client.get(query, headers=tenant_a.headers)).json()
        seen += [e["event_id"] for e in page["events"]]
        after = page["next_after"]
        if not after:
            break
    assert len(seen) == len(set(seen)) == 5
    exported = await client.get("/v1/usage/events?format=csv", headers=tenant_a.headers)
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 5


async def test_usage_needs_the_usage_scope(
    client: httpx.AsyncClient, platform: Platform, tenant_a: TenantFixture
) -> None:
    narrow = await platform.tenant(tenant_a.context).keys.create(
        KeyCreate(name="llm-only", scopes=(Scope.LLM,))
    )
    response = await client.get("/v1/usage", headers={"Authorization": f"Bearer {narrow.secret}"})
    assert_problem(response, 403, "missing_scope")


async def test_admin_report_ranks_tenants_and_totals(
    client: httpx.AsyncClient,
    platform: Platform,
    admin_headers: dict[str, str],
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await _record(platform, tenant_a, 1, tokens=100)
    await _record(platform, tenant_b, 2, tokens=100_000)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {
        "start": day.isoformat(),
        "end": (day + timedelta(days=1)).isoformat(),
        "limit": "1000",
    }
    body = (await client.get("/admin/usage", params=params, headers=admin_headers)).json()
    order = [t["tenant_id"] for t in body["tenants"]]
    assert order.index(tenant_b.slug) < order.index(tenant_a.slug)
    assert Decimal(body["totals"]["billed_amount"]) >= sum(
        Decimal(t["billed_amount"])
        for t in body["tenants"]
        if t["tenant_id"] in {tenant_a.slug, tenant_b.slug}
    )
    csv_body = await client.get(
        "/admin/usage", params={**params, "format": "csv"}, headers=admin_headers
    )
    assert tenant_b.slug in csv_body.text
    refused = await client.get("/admin/usage", params=params, headers=tenant_a.headers)
    assert_problem(refused, 403, "forbidden")


@pytest.fixture
def metered_client(platform: Platform) -> httpx.AsyncClient:
    """The app plus one metered test route, so refusals are seen through real HTTP."""
    app = create_app(platform=platform)
    router = APIRouter()

    @router.post("/test/metered")
    async def metered(tenant: Tenant, response: Response) -> dict[str, str]:
        request_id = uuid.uuid4().hex
        async with platform.metered(
            tenant=tenant,
            request_id=request_id,
            reserve={Dimension.REQUESTS_PER_MINUTE: 1, Dimension.TOKENS_PER_MINUTE: 100},
        ) as work:
            await work.record(_event(request_id, tokens=10))
        response.headers.update(work.warning_headers())
        return {"request_id": request_id}

    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://deskpilot.test")


async def test_rate_limit_refusal_is_429_with_retry_after_and_body(
    metered_client: httpx.AsyncClient, platform: Platform, operator: OperatorContext
) -> None:
    tenant = await new_tenant(platform, operator, "limited")
    handle = await platform.admin(operator).on_tenant(tenant.slug)
    await handle.config.patch({"quotas": {"requests_per_minute": 2}})
    platform.resolver.evict(tenant.slug)
    async with metered_client as client:
        granted = [await client.post("/test/metered", headers=tenant.headers) for _ in range(2)]
        refused = await client.post("/test/metered", headers=tenant.headers)
    if [g.status_code for g in granted] != [200, 200] or refused.status_code != 429:
        pytest.skip("a minute boundary fell between the requests")
    # the second request reached the soft threshold (80% of 2): a warning, not a refusal
    assert "x-deskpilot-quota-warning" not in granted[0].headers
    assert granted[1].headers["x-deskpilot-quota-warning"] == "requests_per_minute=2/2"
    body = assert_problem(
        refused,
        429,
        "quota_exceeded",
        extra=frozenset({"quota", "limit", "used", "requested", "reset_at"}),
    )
    assert body["quota"] == "requests_per_minute"
    assert body["limit"] == "2"
    assert body["used"] == "2"
    assert body["requested"] == "1"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert body["reset_at"] is not None
