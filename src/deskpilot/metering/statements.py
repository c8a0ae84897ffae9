"""The SQL of the ledger transaction: one statement per tenant group of a batch.

The statement takes the group's events as parallel arrays (``unnest``), so its size does not
depend on the number of events, and it is prepared once per connection. In one round trip it

1. inserts the idempotency keys (``ON CONFLICT DO NOTHING``; only keys it inserted come back),
2. appends only those new events to the ledger (the app role may only INSERT there),
3. adds them to the hourly and daily rollups, pre-aggregated, with ``ON CONFLICT DO UPDATE``,
4. adds their tokens and billed amount to the quota counters of their windows,
5. returns the submitted events that were NOT new, with the original event they repeat.

Upserts feed rows in key order, so concurrent writers (several processes) lock rollup and
counter rows in the same order and cannot deadlock each other. Every statement names the
tenant explicitly and runs under that tenant's RLS binding, which checks it again.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import TextClause, text

from deskpilot.core.db import APP_ROLE
from deskpilot.metering.rows import DIMENSIONS

# The arrays a group is sent as: every ledger column the Meter sets, then derived values.
EVENT_COLUMNS: dict[str, str] = {
    "event_id": "text",
    "occurred_at": "timestamptz",
    "request_id": "text",
    "component": "text",
    "operation": "text",
    "model_alias": "text",
    "provider": "text",
    "provider_model": "text",
    "input_tokens": "int8",
    "output_tokens": "int8",
    "cached_tokens": "int8",
    "documents": "int8",
    "chunks": "int8",
    "bytes": "int8",
    "provider_cost": "numeric",
    "billed_amount": "numeric",
    "latency_ms": "numeric",
    "cache_hit": "bool",
    "outcome": "text",
    "agent_run_id": "text",
    "prompt_name": "text",
    "prompt_version": "int4",
    "prompt_variant": "text",
    "knowledge_base": "text",
    "reservation_id": "text",
}
DERIVED_COLUMNS: dict[str, str] = {
    "rollup_model": "text",  # provider_model, else model_alias, else ''
    "minute_start": "timestamptz",
    "minute_end": "timestamptz",
    "period_start": "timestamptz",
    "period_end": "timestamptz",
    "quota_tokens": "int8",  # input + output; 0 for a cache hit
}
INPUT_COLUMNS = {**EVENT_COLUMNS, **DERIVED_COLUMNS}

_SUMMED = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "documents",
    "chunks",
    "bytes",
    "provider_cost",
    "billed_amount",
)
_ROLLUP_KEY = "tenant_id, granularity, bucket_start, component, operation, model"


def _batch_sql(*, source: str, tenant: str, dimension: Mapping[str, str], result: str) -> str:
    """The statement for one tenant's rows: ``source`` selects them (every INPUT_COLUMNS
    column), ``tenant`` and ``dimension[name]`` are SQL expressions, ``result`` the select
    list of what comes back."""
    events = ", ".join(EVENT_COLUMNS)
    sums = ", ".join(f"sum(n.{c})" for c in _SUMMED)
    summed = ", ".join(_SUMMED)
    added = ",\n    ".join(
        f"{c} = usage_rollups.{c} + EXCLUDED.{c}"
        for c in ("events", "errors", "cache_hits", *_SUMMED, "latency_ms_sum")
    )
    tpm, tpp, spend = (dimension[d] for d in DIMENSIONS)
    # Column names and types are this module's constants; every value is a bound parameter.
    return f"""
WITH input AS (
  {source}
),
new_keys AS (
  INSERT INTO usage_keys (tenant_id, request_id, operation, event_id, occurred_at)
  SELECT {tenant}, request_id, operation, event_id, occurred_at FROM input
  ON CONFLICT (tenant_id, request_id, operation) DO NOTHING
  RETURNING event_id
),
new AS (
  SELECT input.* FROM input JOIN new_keys USING (event_id)
),
events AS (
  INSERT INTO usage_events (tenant_id, {events})
  SELECT {tenant}, {events} FROM new
),
rollups AS (
  INSERT INTO usage_rollups ({_ROLLUP_KEY}, events, errors, cache_hits, {summed}, latency_ms_sum)
  SELECT {tenant}, g.granularity, date_trunc(g.granularity, n.occurred_at, 'UTC'),
    n.component, n.operation, n.rollup_model,
    count(*), count(*) FILTER (WHERE n.outcome = 'error'), count(*) FILTER (WHERE n.cache_hit),
    {sums}, sum(n.latency_ms)
  FROM new n CROSS JOIN (VALUES ('hour'), ('day')) AS g(granularity)
  GROUP BY 2, 3, 4, 5, 6
  ORDER BY 2, 3, 4, 5, 6
  ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET
    {added}
),
counters AS (
  INSERT INTO quota_counters (tenant_id, dimension, window_start, used, window_end, updated_at)
  SELECT {tenant}, c.dimension, c.window_start, sum(c.amount), max(c.window_end), now()
  FROM new n CROSS JOIN LATERAL (VALUES
    ({tpm}, n.minute_start, n.minute_end, CAST(n.quota_tokens AS numeric)),
    ({tpp}, n.period_start, n.period_end, CAST(n.quota_tokens AS numeric)),
    ({spend}, n.period_start, n.period_end, n.billed_amount)
  ) AS c(dimension, window_start, window_end, amount)
  WHERE c.amount <> 0
  GROUP BY c.dimension, c.window_start
  ORDER BY c.dimension, c.window_start
  ON CONFLICT (tenant_id, dimension, window_start) DO UPDATE SET
    used = quota_counters.used + EXCLUDED.used, updated_at = EXCLUDED.updated_at
)
SELECT {result}
FROM input i
LEFT JOIN new_keys k ON k.event_id = i.event_id
LEFT JOIN usage_keys o ON o.tenant_id = {tenant} AND o.request_id = i.request_id
  AND o.operation = i.operation
LEFT JOIN usage_events e ON e.tenant_id = {tenant} AND e.occurred_at = o.occurred_at
  AND e.event_id = o.event_id
WHERE k.event_id IS NULL"""  # noqa: S608


def _session_sql() -> str:
    arrays = ",\n    ".join(f"CAST(:{c} AS {t}[])" for c, t in INPUT_COLUMNS.items())
    return _batch_sql(
        source=f"SELECT * FROM unnest(\n    {arrays}\n  ) AS i({', '.join(INPUT_COLUMNS)})",  # noqa: S608
        tenant=":tenant_id",
        dimension={d: f"CAST(:{d} AS text)" for d in DIMENSIONS},
        result="i.event_id, o.event_id AS original_id, o.occurred_at,\n"
        "  e.provider_cost, e.billed_amount",
    )


BATCH: TextClause = text(_session_sql())

# Switches the RLS binding to the next tenant group inside the batch's one transaction.
SET_TENANT: TextClause = text("SELECT set_config('deskpilot.tenant_id', :tenant_id, true)")

# The originals of duplicates that a concurrent transaction (another process) committed after
# the batch statement took its snapshot: a new statement sees them (READ COMMITTED).
ORIGINALS: TextClause = text(
    """
SELECT k.request_id, k.operation, k.event_id, k.occurred_at, e.provider_cost, e.billed_amount
FROM usage_keys k
JOIN usage_events e ON e.tenant_id = k.tenant_id AND e.occurred_at = k.occurred_at
  AND e.event_id = k.event_id
WHERE k.tenant_id = :tenant_id AND (k.request_id, k.operation) IN (
  SELECT * FROM unnest(CAST(:request_ids AS text[]), CAST(:operations AS text[])))
"""
)


# ---- the hot path: the whole batch in one call (migration 0004) ----------------------------
#
# ``deskpilot_record_usage`` runs the statement above once per tenant of the batch, each under
# that tenant's binding (role and tenant set transaction-locally inside the function, so a
# pooled or transaction-pooled connection keeps nothing). Called on its own it is its own
# transaction: the batch costs one round trip instead of BEGIN + statement + COMMIT.
RECORD_FUNCTION = "deskpilot_record_usage"
FUNCTION_COLUMNS = {"tenant_id": "text", **INPUT_COLUMNS}  # its parameters, p_<column>


def record_function_body() -> str:
    """The function's PL/pgSQL source. Migration 0004 holds a frozen copy; a test checks that
    the database's function still matches this (a change here needs a new migration)."""
    arrays = ",\n    ".join(f"p_{c}" for c in FUNCTION_COLUMNS)
    statement = _batch_sql(
        source=f"SELECT * FROM unnest(\n    {arrays}\n  ) AS i({', '.join(FUNCTION_COLUMNS)})\n"  # noqa: S608
        "  WHERE i.tenant_id = v_tenant",
        tenant="v_tenant",
        dimension={d: f"CAST('{value}' AS text)" for d, value in DIMENSIONS.items()},
        result="CAST(i.event_id AS text), CAST(o.event_id AS text), o.occurred_at,\n"
        "  CAST(e.provider_cost AS numeric), CAST(e.billed_amount AS numeric)",
    )
    return f"""
#variable_conflict use_column
DECLARE
  v_tenant text;
BEGIN
  PERFORM set_config('role', '{APP_ROLE}', true);
  FOR v_tenant IN SELECT DISTINCT t FROM unnest(p_tenant_id) AS t ORDER BY 1 LOOP
    PERFORM set_config('deskpilot.tenant_id', v_tenant, true);
    RETURN QUERY{statement};
  END LOOP;
END
"""  # noqa: S608  (names are this module's constants, values are parameters)


def record_function_ddl() -> str:
    parameters = ",\n  ".join(f"p_{c} {t}[]" for c, t in FUNCTION_COLUMNS.items())
    return f"""CREATE OR REPLACE FUNCTION {RECORD_FUNCTION}(
  {parameters}
) RETURNS TABLE (event_id text, original_id text, occurred_at timestamptz,
                 provider_cost numeric, billed_amount numeric)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $function${record_function_body()}$function$"""


RECORD_CALL = (
    f"SELECT * FROM {RECORD_FUNCTION}("  # noqa: S608  (constants)
    + ", ".join(f"${n}" for n in range(1, len(FUNCTION_COLUMNS) + 1))
    + ")"
)
