"""Billing periods (what ``spend_per_period`` and storage GB-months are counted in), and the
windows a ledger row counts in for the quota counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from deskpilot.core.context import ALL_SCOPES, TenantContext
from deskpilot.metering import UsageEvent
from deskpilot.metering.prices import Charge
from deskpilot.metering.rows import counter_deltas, ledger_row
from deskpilot.quotas import period_bounds


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("anchor", "at", "start", "end"),
    [
        (1, utc(2026, 3, 10, 12), utc(2026, 3, 1), utc(2026, 4, 1)),
        (1, utc(2026, 12, 31, 23, 59, 59), utc(2026, 12, 1), utc(2027, 1, 1)),
        (15, utc(2026, 3, 15), utc(2026, 3, 15), utc(2026, 4, 15)),  # exactly at the start
        (15, utc(2026, 3, 14, 23, 59, 59, 999999), utc(2026, 2, 15), utc(2026, 3, 15)),
        (15, utc(2026, 1, 3), utc(2025, 12, 15), utc(2026, 1, 15)),  # across the new year
        (28, utc(2026, 1, 31), utc(2026, 1, 28), utc(2026, 2, 28)),  # Jan 31 -> Feb
        (28, utc(2026, 2, 27, 23), utc(2026, 1, 28), utc(2026, 2, 28)),
        (28, utc(2026, 2, 28), utc(2026, 2, 28), utc(2026, 3, 28)),
        (28, utc(2028, 2, 29, 12), utc(2028, 2, 28), utc(2028, 3, 28)),  # leap day
        (1, utc(2028, 2, 29, 23, 59), utc(2028, 2, 1), utc(2028, 3, 1)),
        (1, utc(2028, 3, 1), utc(2028, 3, 1), utc(2028, 4, 1)),  # end is exclusive
    ],
)
def test_period_bounds(anchor: int, at: datetime, start: datetime, end: datetime) -> None:
    assert period_bounds(anchor, at) == (start, end)
    assert start <= at < end


def test_period_bounds_use_utc_whatever_the_offset() -> None:
    # 00:30 on the 15th in UTC+2 is still the 14th in UTC
    at = datetime(2026, 3, 15, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert period_bounds(15, at) == (utc(2026, 2, 15), utc(2026, 3, 15))


def test_leap_year_february_period_length() -> None:
    start, end = period_bounds(1, utc(2028, 2, 10))
    assert (end - start).days == 29
    start, end = period_bounds(1, utc(2026, 2, 10))
    assert (end - start).days == 28


def _context(anchor: int) -> TenantContext:
    return TenantContext(
        tenant_id="t",
        tier="pro",
        config={},
        principal="p",
        scopes=ALL_SCOPES,
        billing_anchor_day=anchor,
    )


def test_a_ledger_row_counts_in_its_minute_and_billing_period() -> None:
    event = UsageEvent(
        component="gateway",
        operation="chat",
        request_id="r",
        input_tokens=10,
        output_tokens=5,
        cached_tokens=100,
        occurred_at=utc(2026, 3, 14, 23, 59, 30, 5),
    )
    row = ledger_row(
        event,
        tenant=_context(15),
        charge=Charge(Decimal("0.1"), Decimal("0.12")),
        reservation_id=None,
        now=utc(2026, 3, 15),
    )
    assert (row.minute_start, row.minute_end) == (utc(2026, 3, 14, 23, 59), utc(2026, 3, 15))
    assert (row.period_start, row.period_end) == (utc(2026, 2, 15), utc(2026, 3, 15))
    assert row.quota_tokens == 15  # cached tokens are not counted against token quotas
    deltas = {(d.dimension, d.window_start): d.amount for d in counter_deltas([row])}
    assert deltas == {
        ("spend_per_period", utc(2026, 2, 15)): Decimal("0.12"),
        ("tokens_per_minute", utc(2026, 3, 14, 23, 59)): 15,
        ("tokens_per_period", utc(2026, 2, 15)): 15,
    }


def test_a_cache_hit_counts_no_tokens_and_nothing_zero_is_counted() -> None:
    hit = UsageEvent(
        component="cache", operation="chat", request_id="r", input_tokens=50, cache_hit=True
    )
    row = ledger_row(
        hit,
        tenant=_context(1),
        charge=Charge(Decimal(0), Decimal(0)),
        reservation_id=None,
        now=utc(2026, 3, 1),
    )
    assert row.quota_tokens == 0
    assert counter_deltas([row]) == []


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        UsageEvent(
            component="gateway",
            operation="chat",
            request_id="r",
            occurred_at=datetime(2026, 1, 1),  # naive on purpose
        )


def test_nul_characters_are_refused_before_they_reach_a_batch() -> None:
    with pytest.raises(ValueError, match="NUL"):
        UsageEvent(component="gateway", operation="chat", request_id="r\x00")


@pytest.mark.parametrize("year", [1969, 9999])
def test_timestamps_outside_any_billing_period_are_refused(year: int) -> None:
    with pytest.raises(ValueError, match="between the years"):
        UsageEvent(
            component="gateway",
            operation="chat",
            request_id="r",
            occurred_at=datetime(year, 12, 31, tzinfo=UTC),
        )
