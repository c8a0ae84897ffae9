"""Tables of the gateway's stored configuration: operator deployments (platform-owned) and
tenants' own provider keys (tenant-owned). Credentials are only ever stored as ``SecretBox``
ciphertexts; see ``deskpilot.core.secrets``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from deskpilot.core.models import Base, TenantOwned, tenant_fk, utcnow

PRICE = Numeric(24, 12)  # USD per million tokens
PRICES_TOGETHER = (
    "(input_price IS NULL) = (output_price IS NULL) "
    "AND (input_price IS NULL) = (cached_input_price IS NULL)"
)


class DeploymentRow(Base):
    """Platform-owned: one deployment the operator added through the admin API or CLI. The
    application role reads it (the gateway loads its catalogue); only the operator writes."""

    __tablename__ = "gateway_deployments"
    __table_args__ = (CheckConstraint(PRICES_TOGETHER, name="prices"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128), unique=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    api_base: Mapped[str] = mapped_column(Text)
    api_key_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_family: Mapped[str | None] = mapped_column(String(64))
    read_timeout: Mapped[float] = mapped_column(Float)
    connect_timeout: Mapped[float] = mapped_column(Float)
    max_retries: Mapped[int | None] = mapped_column(Integer)
    rpm: Mapped[int | None] = mapped_column(BigInteger)
    tpm: Mapped[int | None] = mapped_column(BigInteger)
    # Header values may be credentials too: the whole name -> value map is one ciphertext.
    extra_headers_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    input_price: Mapped[Decimal | None] = mapped_column(PRICE)
    cached_input_price: Mapped[Decimal | None] = mapped_column(PRICE)
    output_price: Mapped[Decimal | None] = mapped_column(PRICE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProviderKeyRow(TenantOwned, Base):
    """A tenant's own key for one key family (bring-your-own keys, enterprise tier)."""

    __tablename__ = "gateway_provider_keys"
    __table_args__ = (tenant_fk(),)

    family: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
