"""A repeat whose original event is no longer in the ledger (archived by an operator) fails
alone: the other callers of the same committed batch get their answers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from deskpilot.metering import UsageEvent
from deskpilot.platform import Platform
from tests.conftest import TenantFixture


def _event(request_id: str) -> UsageEvent:
    return UsageEvent(
        component="gateway",
        operation="chat",
        request_id=request_id,
        provider="openai",
        provider_model="gpt-4o",
        input_tokens=10,
        output_tokens=5,
    )


async def test_a_repeat_of_an_archived_event_fails_alone(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    archived = uuid.uuid4().hex
    first = await platform.meter.record(_event(archived), tenant=tenant_a.context)
    async with platform.resources.db.dangerously_unscoped_session() as session:
        await session.execute(  # what archiving a detached partition amounts to
            text("DELETE FROM usage_events WHERE tenant_id = :t AND event_id = :e"),
            {"t": tenant_a.slug, "e": first.event_id},
        )

    others = [uuid.uuid4().hex for _ in range(5)]
    results = await asyncio.gather(
        platform.meter.record(_event(archived), tenant=tenant_a.context),
        *(platform.meter.record(_event(r), tenant=tenant_b.context) for r in others),
        return_exceptions=True,
    )
    assert isinstance(results[0], Exception)
    assert all(not isinstance(r, BaseException) and not r.duplicate for r in results[1:])
    # and the writer goes on
    later = await platform.meter.record(_event(uuid.uuid4().hex), tenant=tenant_b.context)
    assert not later.duplicate


@pytest.fixture(autouse=True)
def _expected_error_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("CRITICAL", logger="deskpilot.metering.ledger")
