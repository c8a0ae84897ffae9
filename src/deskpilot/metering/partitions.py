"""Monthly partitions of the usage ledger, created ahead of time.

``usage_events`` is range-partitioned on ``occurred_at``; ``usage_events_YYYY_MM`` holds one UTC
month. A row outside every monthly partition lands in ``usage_events_default`` instead of
failing the write, so a missed maintenance run never loses usage. Run ``ensure_partitions`` at
start-up and daily (it is idempotent and serialised across processes).

DDL runs as the connecting (owner) user, never as the application role, which cannot run it.
Partitions get no grants: the application reaches rows only through the parent table, where
row-level security applies.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from deskpilot.core.db import Database
from deskpilot.metering.models import UsageEventRow

log = logging.getLogger(__name__)

PARENT = "usage_events"
DEFAULT = "usage_events_default"
# Any fixed 64-bit number: serialises partition maintenance across processes.
_PARTITION_LOCK = 0x6465736B6C656467
LOCK_TIMEOUT = "10s"
_COLUMNS = ", ".join(c.name for c in UsageEventRow.__table__.columns)


def partition_name(year: int, month: int) -> str:
    return f"{PARENT}_{year:04d}_{month:02d}"


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _bound(year: int, month: int) -> str:
    """A partition bound literal; built from integers only."""
    return f"'{year:04d}-{month:02d}-01 00:00:00+00'"


async def ensure_partitions(
    db: Database, around: datetime, *, months_before: int = 1, months_after: int = 3
) -> list[str]:
    """Create the monthly partitions from ``months_before`` months before ``around`` to
    ``months_after`` months after it, if missing. Returns the names created.

    If the default partition already holds rows of a month being created (they arrived while
    its partition was missing), they are moved into the new partition in the same transaction
    (the default partition is detached meanwhile, so writers wait for a moment).
    """
    at = around.astimezone(UTC)
    created: list[str] = []
    for offset in range(-months_before, months_after + 1):
        year, month = _shift(at.year, at.month, offset)
        async with db.engine.begin() as conn:
            # DDL on the ledger waits for in-flight writes and makes new ones wait: give up
            # (and retry at the next run) rather than stall metering behind a long transaction.
            await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK})
            if await _create_month(conn, year, month):
                created.append(partition_name(year, month))
    if created:
        log.info("usage ledger partitions created", extra={"partitions": created})
    return created


async def _create_month(conn: AsyncConnection, year: int, month: int) -> bool:
    name = partition_name(year, month)
    if (await conn.execute(text("SELECT to_regclass(:n)"), {"n": f"public.{name}"})).scalar():
        return False
    start, end = _bound(year, month), _bound(*_shift(year, month, 1))
    # Names and bounds come from integers (see partition_name and _bound), not from input.
    create = f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM ({start}) TO ({end})"
    in_month = f"occurred_at >= {start} AND occurred_at < {end}"
    stray = await conn.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE {in_month})")  # noqa: S608
    )
    if not stray.scalar():
        await conn.execute(text(create))
        return True
    log.warning("moving ledger rows out of the default partition", extra={"partition": name})
    await conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {DEFAULT}"))
    await conn.execute(text(create))
    await conn.execute(
        text(
            f"INSERT INTO {name} ({_COLUMNS}) "  # noqa: S608
            f"SELECT {_COLUMNS} FROM {DEFAULT} WHERE {in_month}"
        )
    )
    await conn.execute(text(f"DELETE FROM {DEFAULT} WHERE {in_month}"))  # noqa: S608
    await conn.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {DEFAULT} DEFAULT"))
    return True
