"""Process settings, read once from the environment (and ``.env``) by the app factory or CLI."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from deskpilot.core.secrets import parse_master_key


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("deskpilot", appauthor=False))


class Settings(BaseSettings):
    """Deployment settings. Every field is documented in ``docs/operators/configuration.md``."""

    # Only the aliases are read (no populate_by_name): a field name such as ``home`` must never
    # match an unrelated environment variable (HOME). A refused value is never echoed: several
    # settings are credentials.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="External PostgreSQL with pgvector. Unset: embedded, under DESKPILOT_HOME.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="Redis for cross-process invalidation (and later caches). Unset: in-process.",
    )
    home: Path = Field(default_factory=default_home, validation_alias="DESKPILOT_HOME")
    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias="DESKPILOT_ADMIN_TOKEN",
        description="Operator credential for /admin routes. Unset: generated into DESKPILOT_HOME.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias="DESKPILOT_SECRET_KEY",
        description="Master key (base64 of 32 bytes) encrypting stored credentials. Unset: "
        "generated into DESKPILOT_HOME/secret-key.",
    )
    secret_keys_old: SecretStr | None = Field(
        default=None,
        validation_alias="DESKPILOT_SECRET_KEYS_OLD",
        description="Comma-separated former master keys, still accepted for decryption.",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, validation_alias="DESKPILOT_MAX_BODY_BYTES"
    )
    auth_cache_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias="DESKPILOT_AUTH_CACHE_SECONDS",
        description="How long a resolved key is trusted when Redis invalidation is live.",
    )
    auth_stale_seconds: float = Field(
        default=300.0,
        ge=0,
        validation_alias="DESKPILOT_AUTH_STALE_SECONDS",
        description="How long a cached key keeps working while the database is unreachable.",
    )
    prices_file: Path | None = Field(
        default=None,
        validation_alias="DESKPILOT_PRICES_FILE",
        description="JSON file of price overrides merged over the bundled price table.",
    )
    gateway_config: Path | None = Field(
        default=None,
        validation_alias="DESKPILOT_GATEWAY_CONFIG",
        description="The gateway's deployments file (YAML or JSON, LiteLLM model_list shape); "
        "deskpilot serve --config FILE sets it.",
    )
    db_pool_size: int = Field(default=10, ge=1, validation_alias="DESKPILOT_DB_POOL_SIZE")
    rag_dense_index_min_chunks: int = Field(
        default=10_000,
        ge=1,
        validation_alias="DESKPILOT_RAG_DENSE_INDEX_MIN_CHUNKS",
        description="A knowledge base gets its own HNSW index from this many chunks; below, "
        "its dense search is exact.",
    )
    rag_embed_threads: int | None = Field(
        default=None,
        ge=1,
        validation_alias="DESKPILOT_RAG_EMBED_THREADS",
        description="Threads the local embedding model computes with. Unset: every core.",
    )
    rag_job_workers: int = Field(
        default=1,
        ge=0,
        validation_alias="DESKPILOT_RAG_JOB_WORKERS",
        description="Background ingestion jobs one process runs at once (0: none here).",
    )
    log_level: str = Field(default="INFO", validation_alias="DESKPILOT_LOG_LEVEL")
    log_json: bool = Field(default=True, validation_alias="DESKPILOT_LOG_JSON")

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            token = value.get_secret_value()
            if len(token) < 32 or token.startswith("dp_"):
                raise ValueError(
                    "must be at least 32 characters and must not look like a tenant key "
                    '(generate one with: python -c \'import secrets; print("dpo_" + '
                    "secrets.token_hex(24))')"
                )
        return value

    @field_validator("secret_key")
    @classmethod
    def _master_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_master_key(value.get_secret_value())
        return value

    @field_validator("secret_keys_old")
    @classmethod
    def _old_master_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for index, part in enumerate(value.get_secret_value().split(",")):
                if part.strip():
                    try:
                        parse_master_key(part)
                    except ValueError as exc:
                        raise ValueError(f"key {index + 1}: {exc}") from None
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret-key"
