"""Quota windows: which window an instant falls in, per dimension, all in UTC.

* minute: ``[hh:mm:00, +1 minute)``; day: ``[00:00, +1 day)``;
* billing period: from 00:00 UTC on the tenant's anchor day (1..28) of a month to the same
  instant one month later (the anchor is capped at 28, so every month has that day);
* gauges (``Window.NONE``): one fixed row at the epoch that never ends.

The Meter imports ``period_bounds`` so that the counters it writes in its ledger transaction use
exactly the windows the quota service checks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deskpilot.quotas.schemas import Dimension, Window

GAUGE_WINDOW_START = datetime(1970, 1, 1, tzinfo=UTC)
MIN_ANCHOR_DAY, MAX_ANCHOR_DAY = 1, 28


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("quota windows need an aware datetime (UTC)")
    return at.astimezone(UTC)


def _add_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def period_bounds(anchor_day: int, at: datetime) -> tuple[datetime, datetime]:
    """The billing period ``[start, end)`` that contains ``at``."""
    if not MIN_ANCHOR_DAY <= anchor_day <= MAX_ANCHOR_DAY:
        raise ValueError(f"billing anchor day must be 1..28, not {anchor_day}")
    at = _utc(at)
    year, month = at.year, at.month
    if at.day < anchor_day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    start = datetime(year, month, anchor_day, tzinfo=UTC)
    end_year, end_month = _add_month(year, month)
    return start, datetime(end_year, end_month, anchor_day, tzinfo=UTC)


def window_for(
    dimension: Dimension, *, anchor_day: int, at: datetime
) -> tuple[datetime, datetime | None]:
    """``(start, end)`` of the window of ``dimension`` containing ``at``; gauges never end."""
    window = dimension.window
    if window is Window.NONE:
        return GAUGE_WINDOW_START, None
    at = _utc(at)
    if window is Window.MINUTE:
        start = at.replace(second=0, microsecond=0)
        return start, start + timedelta(minutes=1)
    if window is Window.DAY:
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    return period_bounds(anchor_day, at)
