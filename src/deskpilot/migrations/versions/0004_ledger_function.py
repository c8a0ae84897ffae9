"""Ledger: the whole group-commit batch in one call (``deskpilot_record_usage``).

The ledger writer called BEGIN (with the binding), its statement and COMMIT: three round trips
per batch. This function runs the same statement once per tenant of the batch, each under that
tenant's binding (the application role and the tenant, set transaction-locally inside it), so a
batch is one call and its own transaction. SECURITY INVOKER: it grants nothing its caller could
not do; row-level security applies to every row it writes. Only its owner (the DATABASE_URL
user, as the ledger writer connects) may call it: a session already switched to the
application role, bound to one tenant, cannot use it to write for another.

The body is a frozen copy of ``metering.statements.record_function_ddl()`` at this revision; a
test compares the database's function with the current code, so a change to the statement comes
with a new migration.

Revision ID: 0004_ledger_function
Revises: 0003_gateway
Create Date: 2026-11-25
"""

# ruff: noqa: E501  (a frozen copy of generated SQL, kept byte for byte)
from __future__ import annotations

from alembic import op

revision = "0004_ledger_function"
down_revision = "0003_gateway"
branch_labels = None
depends_on = None

RECORD_USAGE = """
CREATE OR REPLACE FUNCTION deskpilot_record_usage(
  p_tenant_id text[],
  p_event_id text[],
  p_occurred_at timestamptz[],
  p_request_id text[],
  p_component text[],
  p_operation text[],
  p_model_alias text[],
  p_provider text[],
  p_provider_model text[],
  p_input_tokens int8[],
  p_output_tokens int8[],
  p_cached_tokens int8[],
  p_documents int8[],
  p_chunks int8[],
  p_bytes int8[],
  p_provider_cost numeric[],
  p_billed_amount numeric[],
  p_latency_ms numeric[],
  p_cache_hit bool[],
  p_outcome text[],
  p_agent_run_id text[],
  p_prompt_name text[],
  p_prompt_version int4[],
  p_prompt_variant text[],
  p_knowledge_base text[],
  p_reservation_id text[],
  p_rollup_model text[],
  p_minute_start timestamptz[],
  p_minute_end timestamptz[],
  p_period_start timestamptz[],
  p_period_end timestamptz[],
  p_quota_tokens int8[]
) RETURNS TABLE (event_id text, original_id text, occurred_at timestamptz,
                 provider_cost numeric, billed_amount numeric)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $function$
#variable_conflict use_column
DECLARE
  v_tenant text;
BEGIN
  PERFORM set_config('role', 'deskpilot_app', true);
  FOR v_tenant IN SELECT DISTINCT t FROM unnest(p_tenant_id) AS t ORDER BY 1 LOOP
    PERFORM set_config('deskpilot.tenant_id', v_tenant, true);
    RETURN QUERY
WITH input AS (
  SELECT * FROM unnest(
    p_tenant_id,
    p_event_id,
    p_occurred_at,
    p_request_id,
    p_component,
    p_operation,
    p_model_alias,
    p_provider,
    p_provider_model,
    p_input_tokens,
    p_output_tokens,
    p_cached_tokens,
    p_documents,
    p_chunks,
    p_bytes,
    p_provider_cost,
    p_billed_amount,
    p_latency_ms,
    p_cache_hit,
    p_outcome,
    p_agent_run_id,
    p_prompt_name,
    p_prompt_version,
    p_prompt_variant,
    p_knowledge_base,
    p_reservation_id,
    p_rollup_model,
    p_minute_start,
    p_minute_end,
    p_period_start,
    p_period_end,
    p_quota_tokens
  ) AS i(tenant_id, event_id, occurred_at, request_id, component, operation, model_alias, provider, provider_model, input_tokens, output_tokens, cached_tokens, documents, chunks, bytes, provider_cost, billed_amount, latency_ms, cache_hit, outcome, agent_run_id, prompt_name, prompt_version, prompt_variant, knowledge_base, reservation_id, rollup_model, minute_start, minute_end, period_start, period_end, quota_tokens)
  WHERE i.tenant_id = v_tenant
),
new_keys AS (
  INSERT INTO usage_keys (tenant_id, request_id, operation, event_id, occurred_at)
  SELECT v_tenant, request_id, operation, event_id, occurred_at FROM input
  ON CONFLICT (tenant_id, request_id, operation) DO NOTHING
  RETURNING event_id
),
new AS (
  SELECT input.* FROM input JOIN new_keys USING (event_id)
),
events AS (
  INSERT INTO usage_events (tenant_id, event_id, occurred_at, request_id, component, operation, model_alias, provider, provider_model, input_tokens, output_tokens, cached_tokens, documents, chunks, bytes, provider_cost, billed_amount, latency_ms, cache_hit, outcome, agent_run_id, prompt_name, prompt_version, prompt_variant, knowledge_base, reservation_id)
  SELECT v_tenant, event_id, occurred_at, request_id, component, operation, model_alias, provider, provider_model, input_tokens, output_tokens, cached_tokens, documents, chunks, bytes, provider_cost, billed_amount, latency_ms, cache_hit, outcome, agent_run_id, prompt_name, prompt_version, prompt_variant, knowledge_base, reservation_id FROM new
),
rollups AS (
  INSERT INTO usage_rollups (tenant_id, granularity, bucket_start, component, operation, model, events, errors, cache_hits, input_tokens, output_tokens, cached_tokens, documents, chunks, bytes, provider_cost, billed_amount, latency_ms_sum)
  SELECT v_tenant, g.granularity, date_trunc(g.granularity, n.occurred_at, 'UTC'),
    n.component, n.operation, n.rollup_model,
    count(*), count(*) FILTER (WHERE n.outcome = 'error'), count(*) FILTER (WHERE n.cache_hit),
    sum(n.input_tokens), sum(n.output_tokens), sum(n.cached_tokens), sum(n.documents), sum(n.chunks), sum(n.bytes), sum(n.provider_cost), sum(n.billed_amount), sum(n.latency_ms)
  FROM new n CROSS JOIN (VALUES ('hour'), ('day')) AS g(granularity)
  GROUP BY 2, 3, 4, 5, 6
  ORDER BY 2, 3, 4, 5, 6
  ON CONFLICT (tenant_id, granularity, bucket_start, component, operation, model) DO UPDATE SET
    events = usage_rollups.events + EXCLUDED.events,
    errors = usage_rollups.errors + EXCLUDED.errors,
    cache_hits = usage_rollups.cache_hits + EXCLUDED.cache_hits,
    input_tokens = usage_rollups.input_tokens + EXCLUDED.input_tokens,
    output_tokens = usage_rollups.output_tokens + EXCLUDED.output_tokens,
    cached_tokens = usage_rollups.cached_tokens + EXCLUDED.cached_tokens,
    documents = usage_rollups.documents + EXCLUDED.documents,
    chunks = usage_rollups.chunks + EXCLUDED.chunks,
    bytes = usage_rollups.bytes + EXCLUDED.bytes,
    provider_cost = usage_rollups.provider_cost + EXCLUDED.provider_cost,
    billed_amount = usage_rollups.billed_amount + EXCLUDED.billed_amount,
    latency_ms_sum = usage_rollups.latency_ms_sum + EXCLUDED.latency_ms_sum
),
counters AS (
  INSERT INTO quota_counters (tenant_id, dimension, window_start, used, window_end, updated_at)
  SELECT v_tenant, c.dimension, c.window_start, sum(c.amount), max(c.window_end), now()
  FROM new n CROSS JOIN LATERAL (VALUES
    (CAST('tokens_per_minute' AS text), n.minute_start, n.minute_end, CAST(n.quota_tokens AS numeric)),
    (CAST('tokens_per_period' AS text), n.period_start, n.period_end, CAST(n.quota_tokens AS numeric)),
    (CAST('spend_per_period' AS text), n.period_start, n.period_end, n.billed_amount)
  ) AS c(dimension, window_start, window_end, amount)
  WHERE c.amount <> 0
  GROUP BY c.dimension, c.window_start
  ORDER BY c.dimension, c.window_start
  ON CONFLICT (tenant_id, dimension, window_start) DO UPDATE SET
    used = quota_counters.used + EXCLUDED.used, updated_at = EXCLUDED.updated_at
)
SELECT CAST(i.event_id AS text), CAST(o.event_id AS text), o.occurred_at,
  CAST(e.provider_cost AS numeric), CAST(e.billed_amount AS numeric)
FROM input i
LEFT JOIN new_keys k ON k.event_id = i.event_id
LEFT JOIN usage_keys o ON o.tenant_id = v_tenant AND o.request_id = i.request_id
  AND o.operation = i.operation
LEFT JOIN usage_events e ON e.tenant_id = v_tenant AND e.occurred_at = o.occurred_at
  AND e.event_id = o.event_id
WHERE k.event_id IS NULL;
  END LOOP;
END
$function$
"""


def upgrade() -> None:
    op.execute(RECORD_USAGE)
    op.execute("REVOKE EXECUTE ON FUNCTION deskpilot_record_usage FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS deskpilot_record_usage")
