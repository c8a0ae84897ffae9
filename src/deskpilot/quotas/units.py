"""Exact integer units for the Redis backend.

Lua numbers are doubles, so amounts never cross into Lua as decimals: spend travels as integer
micro-dollars (1e-6 USD) and every other dimension (tokens, requests, runs, documents, bytes) is
an integer already. Doubles hold integers exactly up to 2**53, i.e. about 9e9 USD in micros or
9e15 tokens/bytes, far above any limit; Redis counters (INCRBY) are exact 64-bit integers.

Rounding is conservative: an amount held or used is rounded up to the next unit, a limit down,
so rounding can refuse a sliver early but never admits spend past a limit. A mirrored spend
counter can over-count by at most one micro-dollar per increment until it is re-read from
PostgreSQL (see ``redis_backend``).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from deskpilot.quotas.schemas import Dimension

MICROS = Decimal(1_000_000)
EXACT_LIMIT = 2**53  # the largest integer a Lua number (double) holds exactly


def _scale(dimension: Dimension) -> Decimal:
    return MICROS if dimension is Dimension.SPEND_PER_PERIOD else Decimal(1)


def to_units(dimension: Dimension, amount: Decimal) -> int:
    """An amount used or held, rounded up to whole units."""
    return int((amount * _scale(dimension)).to_integral_value(rounding=ROUND_CEILING))


def limit_units(dimension: Dimension, limit: Decimal) -> int:
    """A limit, rounded down to whole units; one past 2**53 units is as good as unlimited."""
    return min(
        int((limit * _scale(dimension)).to_integral_value(rounding=ROUND_FLOOR)), EXACT_LIMIT
    )


def from_units(dimension: Dimension, units: int) -> Decimal:
    if dimension is Dimension.SPEND_PER_PERIOD:
        return Decimal(units) / MICROS
    return Decimal(units)
