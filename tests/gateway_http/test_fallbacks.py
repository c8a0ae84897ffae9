"""Failures over HTTP: retries, fallbacks on every fault kind, the breaker, the 502 with the
chain, and the caller's own errors. None bills, none leaves a reservation."""

from __future__ import annotations

import httpx
import pytest

from deskpilot.core.context import OperatorContext
from deskpilot.gateway.limits import DeploymentLimits
from deskpilot.metering import markup_of
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway.support import SHORT_TIMEOUT
from tests.gateway_http.conftest import ALIAS, Harness, configure
from tests.gateway_http.test_chat import events_of, held
from tests.upstream.server import Behaviour, Hang, Ok, RateLimited, Reset, ServerError

MESSAGES = [{"role": "user", "content": "the printer on floor 3 is offline"}]
PATH = "/v1/chat/completions"


def with_backup(gw: Harness) -> None:
    """Alias ``gpt`` on ``primary``, falling back to alias ``backup`` on ``secondary``."""
    gw.deploy(
        {
            ALIAS: [gw.deployment("primary", read_timeout=SHORT_TIMEOUT)],
            "backup": [gw.deployment("secondary", model="gpt-4o")],
        },
        fallbacks={ALIAS: ["backup"]},
        default_alias=ALIAS,
    )


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (RateLimited(retry_after=1), "rate_limited"),
        (ServerError(500), "server_error"),
        (ServerError(503), "server_error"),
        (Hang(seconds=5), "timeout"),
        (Reset(), "connection"),
    ],
)
async def test_each_fault_kind_falls_back_to_the_next_alias(
    client: httpx.AsyncClient,
    platform: Platform,
    gw: Harness,
    tenant_a: TenantFixture,
    fault: Behaviour,
    kind: str,
) -> None:
    with_backup(gw)
    gw.up.script(fault, fault, Ok(content="served by the backup"))  # one retry, then fall back
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-deskpilot-deployment"] == "secondary"
    assert response.headers["x-deskpilot-model-alias"] == "backup"
    assert response.headers["x-deskpilot-fallbacks"] == f"primary ({kind})"
    assert [r.json["model"] for r in gw.requests_to()] == ["gpt-4o-mini"] * 2 + ["gpt-4o"]
    if kind == "rate_limited":
        assert gw.sleep.delays == [1]  # Retry-After honoured
    [event] = await events_of(platform, tenant_a)
    assert event.provider_model == "gpt-4o"  # billed at the model that answered
    assert event.model_alias == ALIAS


async def test_a_retry_that_succeeds_reports_its_attempts(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.up.script(ServerError(502), Ok())
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 200
    assert response.headers["x-deskpilot-attempts"] == "2"
    assert "x-deskpilot-fallbacks" not in response.headers


async def test_all_deployments_failing_is_a_502_with_the_chain_and_bills_nothing(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    with_backup(gw)
    gw.up.script(*[ServerError(500)] * 4)
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_failed"
    assert error["type"] == "api_error"
    assert error["tried"] == [
        {"deployment": "primary", "error": "server_error", "circuit_open": False},
        {"deployment": "secondary", "error": "server_error", "circuit_open": False},
    ]
    assert len(gw.requests_to()) == 4
    assert await events_of(platform, tenant_a) == []
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_a_request_the_provider_refuses_is_the_callers_error_and_not_retried(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    with_backup(gw)
    gw.up.script(ServerError(400))
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "upstream_refused"
    assert error["deployment"] == "primary"
    assert len(gw.requests_to()) == 1  # no retry, no fallback
    assert await events_of(platform, tenant_a) == []
    assert all(v == 0 for v in (await held(platform, tenant_a)).values())


async def test_an_open_breaker_skips_the_deployment_without_calling_it(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    dead = gw.deployment("primary", api_base="http://127.0.0.1:9/v1")  # discard port: refused
    gw.deploy(
        {ALIAS: [dead], "backup": [gw.deployment("secondary", model="gpt-4o")]},
        fallbacks={ALIAS: ["backup"]},
        default_alias=ALIAS,
    )
    breaker = gw.gateway.breakers.for_deployment(dead)
    seen = []
    while not breaker.is_open() and len(seen) < 10:
        response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
        assert response.headers["x-deskpilot-deployment"] == "secondary"
        seen.append(response.headers["x-deskpilot-fallbacks"])
    assert breaker.is_open()
    assert set(seen) == {"primary (connection)"}
    response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
    assert response.status_code == 200
    assert response.headers["x-deskpilot-fallbacks"] == "primary (circuit open)"
    assert response.headers["x-deskpilot-deployment"] == "secondary"


async def test_a_deployment_at_its_own_rpm_is_skipped_without_a_call(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture
) -> None:
    gw.deploy(
        {ALIAS: [gw.deployment("small", rpm=2), gw.deployment("other", model="gpt-4o")]},
        default_alias=ALIAS,
    )
    gw.gateway.limits = DeploymentLimits(clock=lambda: 6000.0)  # one minute throughout
    served = []
    for _ in range(6):
        response = await client.post(PATH, json={"messages": MESSAGES}, headers=tenant_a.headers)
        assert response.status_code == 200
        served.append(response.headers["x-deskpilot-deployment"])
    assert served.count("small") == 2  # its two requests of this minute, then skipped
    assert len(gw.requests_to()) == 6  # every request answered with one call
    assert (
        gw.gateway.breakers.for_deployment(gw.gateway.catalogue.deployments[ALIAS][0]).state
        == "closed"
    )


async def test_the_spend_reserved_covers_the_dearest_deployment_of_the_chain(
    client: httpx.AsyncClient,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
) -> None:
    """primary (gpt-4o-mini) could answer within the budget, its fallback (gpt-4o) could not:
    the request is refused before any call, as the fallback might be the one that answers."""
    with_backup(gw)
    markup = markup_of(tenant_a.context.section("billing"))
    prices = platform.meter.prices
    cheap = prices.estimate(
        "openai", "gpt-4o-mini", input_tokens=500, output_tokens=1000, markup_percent=markup
    )
    dear = prices.estimate(
        "openai", "gpt-4o", input_tokens=0, output_tokens=1000, markup_percent=markup
    )
    assert cheap < dear / 2
    budget = str(dear / 2)
    tenant = await configure(platform, operator, tenant_a, {"quotas": {"spend_per_period": budget}})
    body = {"messages": MESSAGES, "max_tokens": 1000}
    refused = await client.post(PATH, json=body, headers=tenant.headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["quota"] == "spend_per_period"
    assert gw.requests_to() == []

    gw.deploy({ALIAS: [gw.deployment("primary")]}, default_alias=ALIAS)  # no dearer fallback
    answered = await client.post(PATH, json=body, headers=tenant.headers)
    assert answered.status_code == 200, answered.text
    assert all(v == 0 for v in (await held(platform, tenant)).values())
