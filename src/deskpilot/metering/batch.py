"""One batch of the ledger writer, split per tenant: the callers waiting on it, the rows they
submitted, and the one statement that writes a tenant's rows (``statements.BATCH``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession

from deskpilot.core.context import TenantContext
from deskpilot.metering import statements
from deskpilot.metering.rows import DIMENSIONS, LedgerRow
from deskpilot.metering.schemas import RecordedUsage
from deskpilot.quotas import Reservation


@dataclass(eq=False, slots=True)
class Pending:
    """One caller's row, waiting on ``future`` until its batch is committed (or failed), and
    the reservation its commit settles (the caller's work is done), if any."""

    tenant: TenantContext
    row: LedgerRow
    unpriced: bool
    future: asyncio.Future[RecordedUsage]
    settles: Reservation | None = None


@dataclass(frozen=True, slots=True)
class Original:
    """The first event recorded under a key that a later record repeats."""

    event_id: str
    occurred_at: datetime
    provider_cost: Decimal
    billed_amount: Decimal


@dataclass(slots=True)
class TenantGroup:
    """One tenant's rows of a batch; repeats of a key inside the batch ride on the first."""

    tenant: TenantContext
    primaries: list[Pending] = field(default_factory=list)
    followers: dict[str, list[Pending]] = field(default_factory=dict)  # by primary event id

    def add(self, pending: Pending, seen: dict[tuple[str, str], Pending]) -> None:
        key = (pending.row.request_id, pending.row.operation)
        first = seen.get(key)
        if first is None:
            seen[key] = pending
            self.primaries.append(pending)
        else:
            self.followers.setdefault(first.row.event_id, []).append(pending)

    def params(self) -> dict[str, Any]:
        rows = [p.row for p in self.primaries]
        params: dict[str, Any] = {
            c: [getattr(r, c) for r in rows] for c in statements.INPUT_COLUMNS
        }
        params["tenant_id"] = self.tenant.tenant_id
        params.update(DIMENSIONS)
        return params


GroupOutcome = dict[str, Original] | BaseException  # originals of the group's repeats, or why


def group_by_tenant(batch: Sequence[Pending]) -> list[TenantGroup]:
    groups: dict[str, TenantGroup] = {}
    seen: dict[str, dict[tuple[str, str], Pending]] = {}
    for pending in batch:
        tenant_id = pending.tenant.tenant_id
        if tenant_id not in groups:
            groups[tenant_id], seen[tenant_id] = TenantGroup(pending.tenant), {}
        groups[tenant_id].add(pending, seen[tenant_id])
    return [groups[t] for t in sorted(groups)]


class Runner(Protocol):
    """Runs the ledger's statements in a transaction (a session's; the savepoint path)."""

    async def rows(
        self, clause: TextClause, params: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]: ...


class SessionRunner:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def rows(
        self, clause: TextClause, params: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]:
        result = await self._session.execute(clause, params)
        return [dict(r._mapping) for r in result.all()]


async def write_group(runner: Runner, group: TenantGroup, *, switch: bool) -> dict[str, Original]:
    tenant_id = group.tenant.tenant_id
    if switch:
        await runner.rows(statements.SET_TENANT, {"tenant_id": tenant_id})
    originals, unseen = originals_of(await runner.rows(statements.BATCH, group.params()))
    if unseen:
        originals.update(await late_originals(runner, group, unseen))
    return originals


def originals_of(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Original], list[str]]:
    """From the statement's answer (the submitted events that were not new): the originals
    they repeat by event id, and the events whose original it could not see."""
    originals = {
        r["event_id"]: Original(
            r["original_id"], r["occurred_at"], r["provider_cost"], r["billed_amount"]
        )
        for r in rows
        if r["original_id"] is not None
    }
    return originals, [r["event_id"] for r in rows if r["original_id"] is None]


def function_arguments(groups: Sequence[TenantGroup]) -> list[list[Any]]:
    """The ledger function's arguments for a whole batch: one array per
    ``statements.FUNCTION_COLUMNS`` column, every group's rows (repeats inside the batch are
    answered from their first, they are not sent)."""
    pending = [(g.tenant.tenant_id, p.row) for g in groups for p in g.primaries]
    arguments = [[tenant_id for tenant_id, _ in pending]]
    arguments += [[getattr(row, c) for _, row in pending] for c in statements.INPUT_COLUMNS]
    return arguments


async def late_originals(
    runner: Runner, group: TenantGroup, event_ids: list[str]
) -> dict[str, Original]:
    """Repeats whose original another process committed while this statement ran."""
    by_key = {(p.row.request_id, p.row.operation): p.row.event_id for p in group.primaries}
    wanted = [p.row for p in group.primaries if p.row.event_id in set(event_ids)]
    params = {
        "tenant_id": group.tenant.tenant_id,
        "request_ids": [r.request_id for r in wanted],
        "operations": [r.operation for r in wanted],
    }
    found = {}
    for r in await runner.rows(statements.ORIGINALS, params):
        original = Original(r["event_id"], r["occurred_at"], r["provider_cost"], r["billed_amount"])
        found[by_key[(r["request_id"], r["operation"])]] = original
    if len(found) != len(wanted):
        raise RuntimeError("idempotency key present without its ledger event")
    return found


def members(group: TenantGroup) -> list[Pending]:
    return [*group.primaries, *(f for fs in group.followers.values() for f in fs)]


def recorded_usage(pending: Pending, original: Original | None) -> RecordedUsage:
    row = pending.row
    common = {
        "tenant_id": pending.tenant.tenant_id,
        "request_id": row.request_id,
        "operation": row.operation,
    }
    if original is None:
        return RecordedUsage(
            event_id=row.event_id,
            occurred_at=row.occurred_at,
            provider_cost=row.provider_cost,
            billed_amount=row.billed_amount,
            unpriced=pending.unpriced,
            **common,
        )
    return RecordedUsage(
        event_id=original.event_id,
        occurred_at=original.occurred_at,
        provider_cost=original.provider_cost,
        billed_amount=original.billed_amount,
        # our own row, committed by an attempt whose outcome we did not see, is no repeat
        duplicate=original.event_id != row.event_id,
        **common,
    )


def succeed(pending: Pending, recorded: RecordedUsage) -> None:
    if not pending.future.done():  # the caller may have been cancelled; the row stays
        pending.future.set_result(recorded)


def fail(pending: Pending, exc: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)
