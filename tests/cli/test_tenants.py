"""``deskpilot tenants ...``."""

from __future__ import annotations

import pytest

from deskpilot import __version__
from deskpilot.cli import tenants
from tests.cli.conftest import Invoke, json_out, ok, refused, slug


def test_create_then_show_and_list_as_json(invoke: Invoke) -> None:
    tenant = slug("acme")
    created = json_out(
        invoke(
            "tenants",
            "create",
            tenant,
            "--name",
            "Acme Corp",
            "--tier",
            "pro",
            "--billing-anchor-day",
            "15",
            "--json",
        )
    )
    assert created["tenant_id"] == tenant
    assert (created["display_name"], created["tier"]) == ("Acme Corp", "pro")
    assert (created["status"], created["billing_anchor_day"]) == ("active", 15)

    assert json_out(invoke("tenants", "show", tenant, "--json")) == created
    listed = json_out(invoke("tenants", "list", "--json"))
    assert created in listed
    assert tenant in [
        t["tenant_id"] for t in json_out(invoke("tenants", "list", "--tier", "pro", "--json"))
    ]
    assert tenant not in [
        t["tenant_id"] for t in json_out(invoke("tenants", "list", "--tier", "free", "--json"))
    ]


def test_create_plain_output_and_next_step(invoke: Invoke) -> None:
    tenant = slug("plain")
    result = ok(invoke("tenants", "create", tenant, "--name", "Plain Co"))
    assert f"created tenant {tenant}" in result.stdout
    assert "tier:" in result.stdout
    assert "free" in result.stdout
    assert f"next: deskpilot keys create --tenant {tenant}" in result.stderr

    listing = ok(invoke("tenants", "list")).stdout
    assert listing.splitlines()[0].split() == ["TENANT", "NAME", "TIER", "STATUS", "CREATED"]
    assert any(line.startswith(tenant) and "Plain Co" in line for line in listing.splitlines())


def test_duplicate_slug_is_refused(invoke: Invoke) -> None:
    tenant = slug("dup")
    ok(invoke("tenants", "create", tenant, "--name", "First"))
    error = refused(invoke("tenants", "create", tenant, "--name", "Second"))
    assert f"tenant '{tenant}' already exists" in error
    assert json_out(invoke("tenants", "show", tenant, "--json"))["display_name"] == "First"


def test_invalid_slug_names_the_field_and_creates_nothing(invoke: Invoke) -> None:
    result = invoke("tenants", "create", "Not_A_Slug", "--name", "Bad", "--json")
    error = refused(result)
    assert "tenant_id" in error
    assert "invalid slug" in error
    assert result.stdout == ""  # --json prints nothing on failure
    assert "Not_A_Slug" not in ok(invoke("tenants", "list")).stdout


def test_unknown_tier_and_out_of_range_anchor_day_are_refused(invoke: Invoke) -> None:
    assert "no tier 'platinum'" in refused(
        invoke("tenants", "create", slug("tier"), "--name", "X", "--tier", "platinum")
    )
    assert "billing_anchor_day" in refused(
        invoke("tenants", "create", slug("day"), "--name", "X", "--billing-anchor-day", "31")
    )


def test_unknown_tenant_is_not_found(invoke: Invoke) -> None:
    missing = slug("ghost")
    for args in (
        ("tenants", "show", missing),
        ("tenants", "suspend", missing, "--reason", "x"),
        ("tenants", "resume", missing),
        ("tenants", "delete", missing, "--yes"),
    ):
        assert f"no tenant '{missing}'" in refused(invoke(*args)), args


def test_suspend_and_resume(invoke: Invoke) -> None:
    tenant = slug("susp")
    ok(invoke("tenants", "create", tenant, "--name", "Suspendable"))
    suspended = json_out(
        invoke("tenants", "suspend", tenant, "--reason", "unpaid invoice", "--json")
    )
    assert (suspended["status"], suspended["status_reason"]) == ("suspended", "unpaid invoice")
    in_state = json_out(invoke("tenants", "list", "--status", "suspended", "--json"))
    assert tenant in [t["tenant_id"] for t in in_state]

    resumed = ok(invoke("tenants", "resume", tenant))
    assert f"resumed tenant {tenant}" in resumed.stdout
    assert json_out(invoke("tenants", "show", tenant, "--json"))["status"] == "active"
    active = json_out(invoke("tenants", "list", "--status", "active", "--json"))
    assert tenant in [t["tenant_id"] for t in active]


def test_suspend_needs_a_reason(invoke: Invoke) -> None:
    tenant = slug("reason")
    ok(invoke("tenants", "create", tenant, "--name", "R"))
    assert "reason" in refused(invoke("tenants", "suspend", tenant, "--reason", "  "))
    assert json_out(invoke("tenants", "show", tenant, "--json"))["status"] == "active"


def test_delete_asks_first_and_reports_the_purge(invoke: Invoke) -> None:
    tenant = slug("del")
    ok(invoke("tenants", "create", tenant, "--name", "Doomed"))
    ok(invoke("keys", "create", "--tenant", tenant))

    declined = invoke("tenants", "delete", tenant, input="n\n")
    assert declined.exit_code == 1
    assert "Delete tenant" in declined.stderr
    assert "error: not deleted" in declined.stderr
    assert "deleted tenant" not in declined.stdout  # (CliRunner echoes the typed answer there)
    assert json_out(invoke("tenants", "show", tenant, "--json"))["status"] == "active"

    deleted = ok(invoke("tenants", "delete", tenant, input="y\n"))
    assert f"deleted tenant {tenant}" in deleted.stdout
    lines = deleted.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["TABLE", "ROWS"])
    rows = {table: int(count) for table, count in (line.split() for line in lines[header + 1 :])}
    assert rows["tenants"] == 1
    assert rows["api_keys"] == 1
    assert rows["tenant_config"] == 1
    assert f"no tenant '{tenant}'" in refused(invoke("tenants", "show", tenant))


def test_delete_yes_json_report(invoke: Invoke) -> None:
    tenant = slug("deljson")
    ok(invoke("tenants", "create", tenant, "--name", "Doomed"))
    for _ in range(2):
        ok(invoke("keys", "create", "--tenant", tenant, "--scopes", "llm"))
    report = json_out(invoke("tenants", "delete", tenant, "--yes", "--json"))
    assert report["tenant_id"] == tenant
    assert report["rows_deleted"]["api_keys"] == 2
    assert report["rows_deleted"]["tenants"] == 1
    assert tenant not in [t["tenant_id"] for t in json_out(invoke("tenants", "list", "--json"))]


def test_list_reads_every_page(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(5):
        ok(invoke("tenants", "create", slug(f"page{n}"), "--name", "Paged"))
    everything = json_out(invoke("tenants", "list", "--json"))
    assert len(everything) > 4

    monkeypatch.setattr(tenants, "PAGE", 2)
    assert json_out(invoke("tenants", "list", "--json")) == everything


def test_cli_help_and_version(invoke: Invoke) -> None:
    listed = ok(invoke("--help")).stdout
    for command in ("serve", "migrate", "doctor", "tenants", "keys", "config", "tiers"):
        assert command in listed
    assert ok(invoke("--version")).stdout.strip() == f"deskpilot {__version__}"
