"""The usage ledger's group-commit writer.

Callers enqueue a row and wait on a future. One background task per Meter takes everything
queued (up to ``max_batch``) into ONE transaction, commits, then resolves every caller's future:
a caller returns only once its row is durable, and a commit (one WAL flush) is shared by the
whole batch. While a transaction is in flight new rows queue up for the next one, so batches
grow with load without any timed linger on the hot path.

The rows are grouped per tenant (in tenant order) and each group is written under its own
tenant's RLS binding, as the application role, with one statement (``statements.BATCH``). The
hot path sends the whole batch as ONE call of the ledger function (migration 0004), which binds
each group's tenant in turn and runs that statement: one round trip per batch, on a connection
the writer keeps (``Database.dedicated``), the call being its own transaction.

Failure isolation: the first attempt has no savepoints (the common case pays nothing). If it
fails, the batch is retried once in a session, with a savepoint per tenant group: a group that
fails again (e.g. its tenant was deleted) fails only its own callers; the others commit. If the
retry cannot commit either (database down), every caller gets the error and nothing of the batch is
written. The writer keeps running for later batches either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from deskpilot.core.db import Database
from deskpilot.core.errors import Unavailable
from deskpilot.metering import statements
from deskpilot.metering.batch import (
    GroupOutcome,
    Original,
    Pending,
    SessionRunner,
    TenantGroup,
    fail,
    function_arguments,
    group_by_tenant,
    late_originals,
    members,
    originals_of,
    recorded_usage,
    succeed,
    write_group,
)
from deskpilot.metering.rows import counter_deltas
from deskpilot.metering.schemas import CounterDelta
from deskpilot.quotas import Reservation

log = logging.getLogger(__name__)

# (tenant id, what the commit added to its quota counters, the reservations it settles)
DurableHook = Callable[[str, Sequence[CounterDelta], Sequence[Reservation]], Awaitable[None]]


@dataclass(slots=True)
class Durable:
    """What one tenant's committed rows mean for its quotas."""

    deltas: list[CounterDelta] = field(default_factory=list)
    settled: list[Reservation] = field(default_factory=list)


class MeterClosed(Unavailable):
    """The Meter is shut down (the process is stopping): the event was not recorded."""


@dataclass(slots=True)
class WriterStats:
    """Counts (not timings) of what the writer did; tests and benchmarks read them."""

    batches: int = 0  # committed transactions
    events: int = 0  # new ledger rows
    duplicates: int = 0  # records answered with an earlier event
    failed_attempts: int = 0  # transactions that failed (a retried batch counts once here)
    failed_events: int = 0  # records whose caller got an error


class LedgerWriter:
    def __init__(self, db: Database, *, max_batch: int, hooks: list[DurableHook]) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._db = db
        self._connection = db.dedicated()  # the hot path's; the retry path uses sessions
        self._max_batch = max_batch
        self._hooks = hooks
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = WriterStats()
        self._submitted = self._finished = 0  # rows; finished: written (or failed), hooks run
        self._idle_waiters: list[tuple[int, asyncio.Future[None]]] = []

    def submit(self, pending: Pending) -> None:
        if self._closed:
            raise MeterClosed("usage metering is shut down; the event was not recorded")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="deskpilot-ledger-writer"
            )
        self._queue.put_nowait(pending)
        self._submitted += 1

    async def idle(self) -> None:
        """Return once every row submitted before the call is written (or failed) and the
        ``on_durable`` hooks of its batch have run (the holds it settled are gone)."""
        if self._finished >= self._submitted:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append((self._submitted, waiter))
        await waiter

    def _advance(self, rows: int, *, stopped: bool = False) -> None:
        self._finished += rows
        waiting, self._idle_waiters = self._idle_waiters, []
        for target, waiter in waiting:
            if self._finished >= target or stopped:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                self._idle_waiters.append((target, waiter))

    async def close(self) -> None:
        """Write everything already queued, then stop. Later submits raise ``MeterClosed``."""
        if not self._closed:
            self._closed = True
            if self._task is not None:
                self._queue.put_nowait(None)
        if self._task is not None:
            await asyncio.shield(self._task)
        await self._connection.close()

    async def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                batch, stopping = await self._next_batch()
                if not batch:
                    continue
                try:
                    await self._write(batch)
                except Exception as exc:  # a bug must not stop metering for later batches
                    log.exception("ledger writer error")
                    for pending in batch:
                        fail(pending, exc)
                self._advance(len(batch))
        finally:  # normally empty; after a cancellation, nobody may wait forever
            self._closed = True
            while not self._queue.empty():
                if (item := self._queue.get_nowait()) is not None:
                    fail(item, MeterClosed("usage metering stopped before the event was durable"))
            self._advance(0, stopped=True)

    async def _next_batch(self) -> tuple[list[Pending], bool]:
        """Everything queued (at least one item, at most ``max_batch``); True once the stop
        mark is reached."""
        batch: list[Pending] = []
        item = await self._queue.get()
        while item is not None:
            batch.append(item)
            if len(batch) >= self._max_batch or self._queue.empty():
                return batch, False
            item = self._queue.get_nowait()
        return batch, True

    async def _write(self, batch: list[Pending]) -> None:
        groups = group_by_tenant(batch)
        try:
            try:
                outcomes = await self._transaction(groups, isolate=False)
            except Exception:
                self.stats.failed_attempts += 1
                log.warning("ledger batch failed; retrying per tenant group", exc_info=True)
                outcomes = await self._transaction(groups, isolate=True)
        except Exception as exc:
            log.exception("ledger batch failed; its callers get the error")
            outcomes = {g.tenant.tenant_id: exc for g in groups}
        except BaseException as exc:  # cancelled (loop shutting down): nobody waits forever
            for pending in batch:
                fail(pending, MeterClosed("usage metering stopped before the event was durable"))
            raise exc
        durable = self._resolve(groups, outcomes)
        await asyncio.sleep(0)  # the answered callers run first: bookkeeping after the answers
        await self._notify(durable)

    async def _transaction(
        self, groups: Sequence[TenantGroup], *, isolate: bool
    ) -> dict[str, GroupOutcome]:
        outcomes: dict[str, GroupOutcome]
        if not isolate:
            outcomes = await self._one_call(groups)
            self.stats.batches += 1
            return outcomes
        outcomes = {}
        async with self._db.tenant_session(tenant=groups[0].tenant) as session:
            for group in groups:
                tenant_id = group.tenant.tenant_id
                try:
                    async with session.begin_nested():
                        outcomes[tenant_id] = await write_group(
                            SessionRunner(session), group, switch=True
                        )
                except Exception as exc:
                    log.warning("ledger group failed", extra={"tenant_id": tenant_id})
                    outcomes[tenant_id] = exc
        self.stats.batches += 1
        return outcomes

    async def _one_call(self, groups: Sequence[TenantGroup]) -> dict[str, GroupOutcome]:
        """The hot path: the whole batch in one call of the ledger function (one round trip,
        its own transaction) on the writer's dedicated connection."""
        driver = await self._connection.driver()
        try:
            rows = await driver.fetch(statements.RECORD_CALL, *function_arguments(groups))
        except asyncpg.PostgresError:
            raise  # the server rolled the call back; the connection is fine
        except BaseException:  # lost, or cancelled mid-call: its state is unknown
            await self._connection.discard()
            raise
        owner = {p.row.event_id: g.tenant.tenant_id for g in groups for p in g.primaries}
        repeats: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            repeats[owner[row["event_id"]]].append(row)
        outcomes: dict[str, GroupOutcome] = {}
        for group in groups:
            originals: dict[str, Original]
            originals, unseen = originals_of(repeats[group.tenant.tenant_id])
            if unseen:  # repeats of what another process committed while the call ran
                async with self._db.tenant_session(tenant=group.tenant) as session:
                    originals |= await late_originals(SessionRunner(session), group, unseen)
            outcomes[group.tenant.tenant_id] = originals
        return outcomes

    def _resolve(
        self, groups: Sequence[TenantGroup], outcomes: dict[str, GroupOutcome]
    ) -> dict[str, Durable]:
        """Answer every caller; return, per tenant, the counter deltas of the rows this batch
        made new and the reservations its answered callers asked to settle."""
        durable: dict[str, Durable] = {}
        for group in groups:
            outcome = outcomes[group.tenant.tenant_id]
            if isinstance(outcome, BaseException):
                for pending in members(group):
                    self.stats.failed_events += 1
                    fail(pending, outcome)
                continue
            new_rows, settled = [], []
            for pending in group.primaries:
                try:
                    recorded = recorded_usage(pending, outcome.get(pending.row.event_id))
                except Exception as exc:  # e.g. a repeat whose original was archived away
                    # The batch is committed: only this caller (and its repeats) can be told.
                    log.exception(
                        "cannot answer a recorded event",
                        extra={
                            "tenant_id": group.tenant.tenant_id,
                            "request_id": pending.row.request_id,
                        },
                    )
                    for failed in (pending, *group.followers.get(pending.row.event_id, ())):
                        fail(failed, exc)
                    continue
                if recorded.duplicate:
                    self.stats.duplicates += 1
                else:
                    new_rows.append(pending.row)
                succeed(pending, recorded)
                followers = group.followers.get(pending.row.event_id, [])
                for follower in followers:
                    self.stats.duplicates += 1
                    succeed(follower, recorded.model_copy(update={"duplicate": True}))
                settled += [p.settles for p in (pending, *followers) if p.settles is not None]
            self.stats.events += len(new_rows)
            deltas = counter_deltas(new_rows) if new_rows else []
            if deltas or settled:
                durable[group.tenant.tenant_id] = Durable(deltas, settled)
        return durable

    async def _notify(self, durable: dict[str, Durable]) -> None:
        """After the commit: the durable counters moved and the settled holds can go; mirrors
        (Redis) follow, both in one step. A failing hook is logged, never raised: the usage is
        already durable (holds left behind end with their lease)."""
        for tenant_id, changes in durable.items():
            for hook in self._hooks:
                try:
                    await hook(tenant_id, changes.deltas, changes.settled)
                except Exception:
                    log.exception("on_durable hook failed", extra={"tenant_id": tenant_id})
