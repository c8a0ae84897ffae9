"""Quota windows, integer units and the refusal's Retry-After (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from deskpilot.quotas import Dimension, QuotaExceeded, period_bounds, window_for
from deskpilot.quotas.units import from_units, limit_units, to_units
from deskpilot.quotas.windows import GAUGE_WINDOW_START


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "at", "start", "end"),
    [
        (1, utc(2026, 3, 1), utc(2026, 3, 1), utc(2026, 4, 1)),
        (1, utc(2026, 3, 31, 23, 59, 59), utc(2026, 3, 1), utc(2026, 4, 1)),
        (15, utc(2026, 3, 14, 23, 59, 59, 999999), utc(2026, 2, 15), utc(2026, 3, 15)),
        (15, utc(2026, 3, 15), utc(2026, 3, 15), utc(2026, 4, 15)),
        (28, utc(2026, 2, 28, 12), utc(2026, 2, 28), utc(2026, 3, 28)),
        (10, utc(2026, 1, 5), utc(2025, 12, 10), utc(2026, 1, 10)),
        (10, utc(2026, 12, 20), utc(2026, 12, 10), utc(2027, 1, 10)),
    ],
)
def test_period_bounds(anchor: int, at: datetime, start: datetime, end: datetime) -> None:
    assert period_bounds(anchor, at) == (start, end)


def test_period_bounds_are_utc_whatever_the_input_zone() -> None:
    # 2026-03-15 01:00 at +02:00 is 2026-03-14 23:00 UTC: still the previous period
    at = datetime(2026, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert period_bounds(15, at) == (utc(2026, 2, 15), utc(2026, 3, 15))


@pytest.mark.parametrize("anchor", [0, 29, 31])
def test_anchor_day_out_of_range_is_refused(anchor: int) -> None:
    with pytest.raises(ValueError, match="anchor"):
        period_bounds(anchor, utc(2026, 1, 1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        window_for(Dimension.TOKENS_PER_MINUTE, anchor_day=1, at=datetime(2026, 1, 1))


def test_window_for_each_kind() -> None:
    at = utc(2026, 5, 20, 13, 45, 30, 123)
    assert window_for(Dimension.REQUESTS_PER_MINUTE, anchor_day=1, at=at) == (
        utc(2026, 5, 20, 13, 45),
        utc(2026, 5, 20, 13, 46),
    )
    assert window_for(Dimension.AGENT_RUNS_PER_DAY, anchor_day=1, at=at) == (
        utc(2026, 5, 20),
        utc(2026, 5, 21),
    )
    assert window_for(Dimension.SPEND_PER_PERIOD, anchor_day=21, at=at) == (
        utc(2026, 4, 21),
        utc(2026, 5, 21),
    )
    for gauge in (Dimension.DOCUMENTS, Dimension.CONCURRENT_AGENT_RUNS):
        assert window_for(gauge, anchor_day=1, at=at) == (GAUGE_WINDOW_START, None)
    assert utc(1970, 1, 1) == GAUGE_WINDOW_START


def test_spend_travels_as_micro_dollars_rounded_conservatively() -> None:
    spend = Dimension.SPEND_PER_PERIOD
    assert to_units(spend, Decimal("1.5")) == 1_500_000
    assert to_units(spend, Decimal("0.0000001")) == 1  # a held amount rounds up
    assert limit_units(spend, Decimal("10.0000009")) == 10_000_000  # a limit rounds down
    assert from_units(spend, 1_500_001) == Decimal("1.500001")
    assert to_units(Dimension.TOKENS_PER_PERIOD, Decimal(40_000)) == 40_000
    assert to_units(spend, Decimal(-2)) == -2_000_000  # a decrease never exceeds the real one
    assert limit_units(Dimension.STORAGE_BYTES, Decimal(10**20)) == 2**53  # exact in Lua


def test_retry_after_only_for_minute_and_day_windows() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=30)

    def refusal(dimension: Dimension) -> QuotaExceeded:
        return QuotaExceeded(
            dimension, limit=Decimal(1), used=Decimal(1), requested=Decimal(1), reset_at=soon
        )

    retry = refusal(Dimension.REQUESTS_PER_MINUTE).retry_after()
    assert retry is not None
    assert 1 <= retry <= 30
    assert refusal(Dimension.AGENT_RUNS_PER_DAY).retry_after() is not None
    assert refusal(Dimension.SPEND_PER_PERIOD).retry_after() is None
    assert refusal(Dimension.SPEND_PER_PERIOD).extra()["quota"] == "spend_per_period"
