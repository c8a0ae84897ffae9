"""Metering and quotas: usage ledger (monthly partitions), idempotency keys, rollups, storage
measurements, quota counters and reservations; quota and billing layers for the seeded tiers.

Revision ID: 0002_metering_quotas
Revises: 0001_tenancy
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from deskpilot.core import rls

revision = "0002_metering_quotas"
down_revision = "0001_tenancy"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(24, 12)
GB = 1024**3

TIER_LAYERS: dict[str, dict[str, Any]] = {
    "free": {
        "quotas": {
            "requests_per_minute": 60,
            "tokens_per_minute": 40_000,
            "tokens_per_period": 1_000_000,
            "spend_per_period": "10",
            "documents": 1_000,
            "storage_bytes": GB // 10,
            "cache_bytes": 50 * 1024**2,
            "agent_runs_per_day": 50,
            "concurrent_agent_runs": 2,
        },
        "billing": {"markup_percent": "0"},
    },
    "pro": {
        "quotas": {
            "requests_per_minute": 600,
            "tokens_per_minute": 400_000,
            "tokens_per_period": 50_000_000,
            "spend_per_period": "500",
            "documents": 100_000,
            "storage_bytes": 10 * GB,
            "cache_bytes": GB,
            "agent_runs_per_day": 2_000,
            "concurrent_agent_runs": 10,
        },
        "billing": {"markup_percent": "20"},
    },
    "enterprise": {
        "quotas": {
            "requests_per_minute": 6_000,
            "tokens_per_minute": 4_000_000,
            "storage_bytes": 1024 * GB,
            "cache_bytes": 20 * GB,
            "concurrent_agent_runs": 100,
        },
        "billing": {"markup_percent": "10"},
    },
}


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=f"fk_{table}_tenant_id_tenants"
    )


def _counts() -> list[sa.Column[Any]]:
    return [
        sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
        for name in (
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "documents",
            "chunks",
            "bytes",
        )
    ]


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("model_alias", sa.String(128), nullable=False, server_default=""),
        sa.Column("provider", sa.String(64), nullable=False, server_default=""),
        sa.Column("provider_model", sa.String(128), nullable=False, server_default=""),
        *_counts(),
        sa.Column("provider_cost", MONEY, nullable=False, server_default="0"),
        sa.Column("billed_amount", MONEY, nullable=False, server_default="0"),
        sa.Column("latency_ms", sa.Numeric(14, 3), nullable=False, server_default="0"),
        sa.Column("cache_hit", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("outcome", sa.String(16), nullable=False, server_default="ok"),
        sa.Column("agent_run_id", sa.String(64), nullable=True),
        sa.Column("prompt_name", sa.String(128), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("prompt_variant", sa.String(64), nullable=True),
        sa.Column("knowledge_base", sa.String(128), nullable=True),
        sa.Column("reservation_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "occurred_at", "event_id", name="pk_usage_events"),
        _tenant_fk("usage_events"),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    # Rows outside every monthly partition land here instead of failing the write; monthly
    # partitions are created ahead of time (deskpilot.metering.partitions).
    op.execute("CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT")
    op.create_table(
        "usage_keys",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", "operation", name="pk_usage_keys"),
        _tenant_fk("usage_keys"),
    )
    op.create_table(
        "usage_rollups",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("errors", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_hits", sa.BigInteger(), nullable=False, server_default="0"),
        *_counts(),
        sa.Column("provider_cost", MONEY, nullable=False, server_default="0"),
        sa.Column("billed_amount", MONEY, nullable=False, server_default="0"),
        sa.Column("latency_ms_sum", sa.Numeric(20, 3), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "granularity",
            "bucket_start",
            "component",
            "operation",
            "model",
            name="pk_usage_rollups",
        ),
        sa.CheckConstraint("granularity IN ('hour', 'day')", name="ck_usage_rollups_granularity"),
        _tenant_fk("usage_rollups"),
    )
    op.create_table(
        "storage_measurements",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.Column("component", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("items", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint(
            "tenant_id", "measured_on", "component", "resource", name="pk_storage_measurements"
        ),
        _tenant_fk("storage_measurements"),
    )
    op.create_table(
        "quota_counters",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("dimension", sa.String(40), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Numeric(30, 12), nullable=False, server_default="0"),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "dimension", "window_start", name="pk_quota_counters"),
        _tenant_fk("quota_counters"),
    )
    op.create_table(
        "quota_reservations",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("reservation_id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("amounts", pg.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "reservation_id", name="pk_quota_reservations"),
        _tenant_fk("quota_reservations"),
    )
    op.create_index(
        "ix_quota_reservations_tenant_id_expires_at",
        "quota_reservations",
        ["tenant_id", "expires_at"],
    )
    for table in (
        "usage_events",
        "usage_keys",
        "usage_rollups",
        "storage_measurements",
        "quota_counters",
        "quota_reservations",
    ):
        rls.tenant_table(table)
    # The ledger is append-only for the application: no UPDATE or DELETE (tenant purge runs
    # as the operator role).
    op.execute("REVOKE UPDATE, DELETE ON usage_events FROM deskpilot_app")
    for tier, layer in TIER_LAYERS.items():
        op.execute(
            sa.text(
                "UPDATE tiers SET config = config || CAST(:layer AS jsonb) WHERE name = :tier"
            ).bindparams(layer=json.dumps(layer), tier=tier)
        )


def downgrade() -> None:
    for table in (
        "quota_reservations",
        "quota_counters",
        "storage_measurements",
        "usage_rollups",
        "usage_keys",
        "usage_events",
    ):
        op.drop_table(table)
    for tier in TIER_LAYERS:
        op.execute(
            sa.text(
                "UPDATE tiers SET config = config - 'quotas' - 'billing' WHERE name = :tier"
            ).bindparams(tier=tier)
        )
