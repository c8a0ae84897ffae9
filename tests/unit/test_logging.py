from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from deskpilot.core.logging import configure_logging, redact_text
from deskpilot.tenancy.keys import new_key, new_operator_token


def test_keys_tokens_and_passwords_are_masked() -> None:
    key = new_key("acme")[0]
    operator = new_operator_token()
    text = (
        f"key {key.token} op {operator} Authorization: Bearer abc.def "
        "db postgresql://app:hunter2@db:5432/x"
    )
    masked = redact_text(text)
    assert key.token not in masked
    assert f"dp_acme_{key.key_id}_***" in masked
    assert operator not in masked
    assert "abc.def" not in masked
    assert "hunter2" not in masked


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_log_records_never_carry_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", json=True)
    key = new_key("acme")[0].token
    log = logging.getLogger("deskpilot.test")
    log.info("resolved %s", key, extra={"api_key": key, "tokens_in": 12, "tenant_id": "acme"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert key not in line
    assert event["api_key"] == "**redacted**"
    assert event["tokens_in"] == 12
    assert event["tenant_id"] == "acme"
