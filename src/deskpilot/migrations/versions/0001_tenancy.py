"""Tenancy: roles, tiers, tenants, API keys, configuration layers, audit logs.

Revision ID: 0001_tenancy
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from deskpilot.core import rls

revision = "0001_tenancy"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ("tenants", "api_keys", "tenant_config", "audit_log")

SEED_TIERS = (
    ("free", "Free", "Evaluation and small teams.", {"keys": {"max_active_keys": 3}}),
    ("pro", "Pro", "Production use by one organisation.", {"keys": {"max_active_keys": 25}}),
    (
        "enterprise",
        "Enterprise",
        "Large organisations; bring-your-own provider keys.",
        {"keys": {"max_active_keys": 200}},
    ),
)


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _audit_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("entry_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("old_value", pg.JSONB(), nullable=True),
        sa.Column("new_value", pg.JSONB(), nullable=True),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    rls.create_roles()

    op.create_table(
        "tiers",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("config", pg.JSONB(), nullable=False, server_default="{}"),
        *_timestamps(),
        sa.CheckConstraint("name ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'", name="ck_tiers_name"),
    )
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column(
            "tier",
            sa.String(40),
            sa.ForeignKey("tiers.name", name="fk_tenants_tier_tiers"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("billing_anchor_day", sa.SmallInteger(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenants"),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'deleted')", name="ck_tenants_status"
        ),
        sa.CheckConstraint(
            "billing_anchor_day BETWEEN 1 AND 28", name="ck_tenants_billing_anchor_day"
        ),
        sa.CheckConstraint("tenant_id ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'", name="ck_tenants_slug"),
    )
    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("scopes", pg.ARRAY(sa.String(32)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "key_id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_api_keys_tenant_id_tenants"
        ),
    )
    op.create_index("ix_api_keys_tenant_id_created_at", "api_keys", ["tenant_id", "created_at"])
    op.create_table(
        "tenant_config",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("overrides", pg.JSONB(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_config"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_tenant_config_tenant_id_tenants"
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        *_audit_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "entry_id", name="pk_audit_log"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_audit_log_tenant_id_tenants"
        ),
    )
    op.create_index("ix_audit_log_tenant_id_at", "audit_log", ["tenant_id", "at"])
    op.create_table(
        "platform_audit_log",
        *_audit_columns(),
        sa.PrimaryKeyConstraint("entry_id", name="pk_platform_audit_log"),
    )

    for table in TENANT_TABLES:
        rls.tenant_table(table)
    rls.platform_table("tiers")
    rls.platform_table("platform_audit_log")

    tiers = sa.table(
        "tiers",
        sa.column("name", sa.String),
        sa.column("display_name", sa.String),
        sa.column("description", sa.Text),
        sa.column("config", pg.JSONB),
    )
    op.bulk_insert(
        tiers,
        [
            {"name": n, "display_name": d, "description": desc, "config": c}
            for n, d, desc, c in SEED_TIERS
        ],
    )


def downgrade() -> None:
    for table in (
        "platform_audit_log",
        "audit_log",
        "tenant_config",
        "api_keys",
        "tenants",
        "tiers",
    ):
        op.drop_table(table)
