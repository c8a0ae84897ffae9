"""Quota dimensions, reservations and the refusal a caller sees."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from deskpilot.core.errors import Conflict, DeskpilotError


class Window(StrEnum):
    MINUTE = "minute"  # rate limits: fixed one-minute windows, UTC
    DAY = "day"  # UTC day
    PERIOD = "period"  # billing period from the tenant's anchor day, UTC
    NONE = "none"  # gauges: what is held at once (concurrency, stored amounts)


class Dimension(StrEnum):
    REQUESTS_PER_MINUTE = "requests_per_minute"
    TOKENS_PER_MINUTE = "tokens_per_minute"
    TOKENS_PER_PERIOD = "tokens_per_period"
    SPEND_PER_PERIOD = "spend_per_period"
    DOCUMENTS = "documents"
    STORAGE_BYTES = "storage_bytes"
    CACHE_BYTES = "cache_bytes"
    AGENT_RUNS_PER_DAY = "agent_runs_per_day"
    CONCURRENT_AGENT_RUNS = "concurrent_agent_runs"

    @property
    def window(self) -> Window:
        return _WINDOWS[self]

    @property
    def is_rate(self) -> bool:
        return self.window is Window.MINUTE


_WINDOWS = {
    Dimension.REQUESTS_PER_MINUTE: Window.MINUTE,
    Dimension.TOKENS_PER_MINUTE: Window.MINUTE,
    Dimension.TOKENS_PER_PERIOD: Window.PERIOD,
    Dimension.SPEND_PER_PERIOD: Window.PERIOD,
    Dimension.DOCUMENTS: Window.NONE,
    Dimension.STORAGE_BYTES: Window.NONE,
    Dimension.CACHE_BYTES: Window.NONE,
    Dimension.AGENT_RUNS_PER_DAY: Window.DAY,
    Dimension.CONCURRENT_AGENT_RUNS: Window.NONE,
}


@dataclass(frozen=True, slots=True)
class Hold:
    """One dimension of a reservation: the amount held in one window."""

    dimension: Dimension
    window_start: datetime
    window_end: datetime | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Reservation:
    """Amounts held for one piece of work until settled, released, or the lease expires."""

    reservation_id: str
    tenant_id: str
    request_id: str
    holds: tuple[Hold, ...]
    expires_at: datetime
    warnings: tuple[QuotaWarning, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class QuotaWarning:
    """Past the soft threshold, not the limit: the response carries a warning header."""

    dimension: Dimension
    limit: Decimal
    used: Decimal
    reset_at: datetime | None


def plain(amount: Decimal) -> str:
    """An exact decimal without exponent or trailing zeros: ``2``, ``0.35``."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class QuotaExceeded(DeskpilotError):
    """A hard limit refuses the work. HTTP 429; the body names the quota, limit, used amount
    and reset time, and ``Retry-After`` says when a rate limit resets."""

    status, type, title = 429, "quota_exceeded", "Quota exceeded"

    def __init__(
        self,
        dimension: Dimension,
        *,
        limit: Decimal,
        used: Decimal,
        requested: Decimal,
        reset_at: datetime | None,
    ) -> None:
        super().__init__(
            f"{dimension.value}: {plain(used)} used + {plain(requested)} requested exceeds "
            f"the limit {plain(limit)}"
        )
        self.dimension = dimension
        self.limit = limit
        self.used = used
        self.requested = requested
        self.reset_at = reset_at

    def extra(self) -> dict[str, Any]:
        return {
            "quota": self.dimension.value,
            "limit": plain(self.limit),
            "used": plain(self.used),
            "requested": plain(self.requested),
            "reset_at": self.reset_at.isoformat() if self.reset_at else None,
        }

    def retry_after(self) -> int | None:
        """Rate and daily limits reset soon: say when. A billing period's reset is in the
        body (``reset_at``); gauges free up when held amounts are released."""
        if self.reset_at is None or self.dimension.window not in (Window.MINUTE, Window.DAY):
            return None
        seconds = (self.reset_at - datetime.now(UTC)).total_seconds()
        return max(1, math.ceil(seconds))


class ReservationLost(Conflict):
    """A lease could not be renewed: the reservation was settled, released or had expired, so
    its holds are gone (and the capacity may be taken). Reserve again before continuing."""

    type, title = "reservation_lost", "Quota reservation no longer held"


class QuotaState(StrEnum):
    OK = "ok"
    WARNING = "warning"  # at or past the soft threshold
    EXCEEDED = "exceeded"  # at or past the limit: work that needs more is refused


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """One limited dimension right now (``GET /v1/usage``). ``used`` includes ``held``: open,
    unexpired reservations count against the limit as much as settled usage does."""

    dimension: Dimension
    window: Window
    limit: Decimal
    used: Decimal
    held: Decimal
    window_start: datetime
    window_end: datetime | None  # the reset time; None for gauges
    percent: Decimal
    state: QuotaState
