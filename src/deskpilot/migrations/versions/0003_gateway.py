"""Gateway: operator deployments (platform-owned), tenants' own provider keys (tenant-owned),
own provider keys allowed on the enterprise tier.

Revision ID: 0003_gateway
Revises: 0002_metering_quotas
Create Date: 2026-11-26
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from deskpilot.core import rls

revision = "0003_gateway"
down_revision = "0002_metering_quotas"
branch_labels = None
depends_on = None

PRICE = sa.Numeric(24, 12)  # USD per million tokens

# Merged into the tier's gateway section; a setting the operator already made there wins.
TIER_GATEWAY: dict[str, dict[str, Any]] = {"enterprise": {"byo_keys": "allowed"}}


def upgrade() -> None:
    op.create_table(
        "gateway_deployments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("api_base", sa.Text(), nullable=False),
        sa.Column("api_key_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_family", sa.String(64), nullable=True),
        sa.Column("read_timeout", sa.Float(), nullable=False),
        sa.Column("connect_timeout", sa.Float(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("rpm", sa.BigInteger(), nullable=True),
        sa.Column("tpm", sa.BigInteger(), nullable=True),
        sa.Column("extra_headers_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("input_price", PRICE, nullable=True),
        sa.Column("cached_input_price", PRICE, nullable=True),
        sa.Column("output_price", PRICE, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_deployments"),
        sa.UniqueConstraint("name", name="uq_gateway_deployments_name"),
        sa.CheckConstraint(
            "(input_price IS NULL) = (output_price IS NULL) "
            "AND (input_price IS NULL) = (cached_input_price IS NULL)",
            name="ck_gateway_deployments_prices",
        ),
    )
    op.create_table(
        "gateway_provider_keys",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "family", name="pk_gateway_provider_keys"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_gateway_provider_keys_tenant_id_tenants"
        ),
    )
    rls.tenant_table("gateway_provider_keys")
    rls.platform_table("gateway_deployments")  # the gateway reads it; the operator writes
    for tier, section in TIER_GATEWAY.items():
        op.execute(
            sa.text(
                "UPDATE tiers SET config = jsonb_set(config, '{gateway}', "
                "CAST(:section AS jsonb) || coalesce(config->'gateway', '{}'::jsonb)) "
                "WHERE name = :tier"
            ).bindparams(section=json.dumps(section), tier=tier)
        )


def downgrade() -> None:
    for table in ("gateway_provider_keys", "gateway_deployments"):
        op.drop_table(table)
    for tier, section in TIER_GATEWAY.items():
        for key, value in section.items():
            op.execute(
                sa.text(
                    "UPDATE tiers SET config = config #- CAST(:path AS text[]) "
                    "WHERE name = :tier AND config->'gateway'->:key = CAST(:value AS jsonb)"
                ).bindparams(path=f"{{gateway,{key}}}", tier=tier, key=key, value=json.dumps(value))
            )
        op.execute(
            sa.text(
                "UPDATE tiers SET config = config - 'gateway' "
                "WHERE name = :tier AND config->'gateway' = '{}'::jsonb"
            ).bindparams(tier=tier)
        )
