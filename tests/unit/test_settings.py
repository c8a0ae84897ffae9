from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from deskpilot.core.db import async_url
from deskpilot.core.errors import SetupError
from deskpilot.core.settings import Settings


def test_weak_or_tenant_shaped_admin_tokens_are_refused() -> None:
    with pytest.raises(ValidationError, match="32 characters"):
        Settings.model_validate({"DESKPILOT_ADMIN_TOKEN": "short"})
    with pytest.raises(ValidationError):
        Settings.model_validate({"DESKPILOT_ADMIN_TOKEN": "dp_" + "x" * 40})


def test_embedded_is_the_default(tmp_path: object) -> None:
    settings = Settings.model_validate({"DESKPILOT_HOME": tmp_path})
    assert settings.embedded
    assert settings.pgdata.name == "pgdata"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("postgresql+psycopg://h/db", "postgresql+asyncpg://h/db"),
    ],
)
def test_database_urls_are_normalised_to_asyncpg(given: str, expected: str) -> None:
    assert async_url(given) == expected


def test_non_postgres_urls_are_refused_with_a_fix() -> None:
    with pytest.raises(SetupError, match="PostgreSQL URL"):
        async_url("sqlite:///x.db")


def test_only_deskpilot_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``HOME`` (and other field-named variables) must not leak into the settings."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.delenv("DESKPILOT_HOME", raising=False)
    monkeypatch.delenv("DESKPILOT_LOG_LEVEL", raising=False)
    settings = Settings()
    assert settings.home != tmp_path
    assert settings.home.name == "deskpilot"
    assert settings.log_level == "INFO"
