"""``deskpilot keys ...``: the secret is shown once, and it is a working credential."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import TenantSuspended, Unauthenticated
from deskpilot.platform import Platform
from tests.cli.conftest import Invoke, cli_settings, json_out, ok, refused, slug

SECRET = re.compile(r"dp_[a-z0-9-]+_[a-z0-9]{10}_[A-Za-z0-9]{40}")


def authenticate(home: Path, secret: str) -> TenantContext:
    async def resolve() -> TenantContext:
        platform = await Platform.open(cli_settings(home), run_migrations=False)
        try:
            return await platform.authenticate(secret)
        finally:
            await platform.close()

    return asyncio.run(resolve())


def new_tenant(invoke: Invoke, tier: str = "pro") -> str:
    tenant = slug("keys")
    ok(invoke("tenants", "create", tenant, "--name", "Key Holder", "--tier", tier))
    return tenant


def test_create_prints_the_secret_once_and_it_authenticates(invoke: Invoke, cli_home: Path) -> None:
    tenant = new_tenant(invoke)
    result = ok(invoke("keys", "create", "--tenant", tenant, "--name", "helpdesk"))

    secret = result.stdout.strip()
    assert (
        result.stdout == secret + "\n"
    )  # the secret alone on stdout: KEY=$(deskpilot keys create)
    assert SECRET.fullmatch(secret)
    assert secret.startswith(f"dp_{tenant}_")
    assert "shown only now" in result.stderr
    assert secret not in result.stderr

    context = authenticate(cli_home, secret)
    assert context.tenant_id == tenant
    assert context.scopes == frozenset(Scope)  # no --scopes: every scope the tier allows

    listed = ok(invoke("keys", "list", "--tenant", tenant, "--json"))
    [key] = json_out(listed)
    assert key["key_id"] == context.key_id
    assert key["name"] == "helpdesk"
    assert secret not in listed.stdout
    assert secret.rsplit("_", 1)[1] not in listed.stdout
    plain = ok(invoke("keys", "list", "--tenant", tenant))
    assert context.key_id is not None
    assert context.key_id in plain.stdout
    assert secret.rsplit("_", 1)[1] not in plain.stdout


def test_create_json_holds_the_secret_and_the_key(invoke: Invoke, cli_home: Path) -> None:
    tenant = new_tenant(invoke)
    created = json_out(
        invoke(
            "keys",
            "create",
            "-t",
            tenant,
            "--scopes",
            "llm, kb:read",
            "--expires-in-days",
            "30",
            "--json",
        )
    )
    assert SECRET.fullmatch(created["secret"])
    assert set(created["key"]["scopes"]) == {"llm", "kb:read"}
    assert created["key"]["tenant_id"] == tenant
    assert created["key"]["expires_at"] is not None
    assert created["key"]["created_by"].startswith("operator:cli:")

    context = authenticate(cli_home, created["secret"])
    assert context.scopes == frozenset({Scope.LLM, Scope.KB_READ})
    assert context.key_id == created["key"]["key_id"]


def test_unknown_scope_is_refused_naming_the_field(invoke: Invoke) -> None:
    tenant = new_tenant(invoke)
    error = refused(invoke("keys", "create", "-t", tenant, "--scopes", "llm,root"))
    assert "scopes" in error
    assert "'llm'" in error
    assert json_out(invoke("keys", "list", "-t", tenant, "--json")) == []


def test_the_tier_limit_on_active_keys_is_enforced(invoke: Invoke) -> None:
    tenant = new_tenant(invoke, tier="free")  # the free tier allows 3 active keys
    for _ in range(3):
        ok(invoke("keys", "create", "-t", tenant, "--scopes", "llm"))
    assert "already has 3 active keys" in refused(invoke("keys", "create", "-t", tenant))


def test_revoke_stops_the_key(invoke: Invoke, cli_home: Path) -> None:
    tenant = new_tenant(invoke)
    created = json_out(invoke("keys", "create", "-t", tenant, "--json"))
    key_id = created["key"]["key_id"]
    assert authenticate(cli_home, created["secret"]).key_id == key_id

    revoked = ok(invoke("keys", "revoke", "-t", tenant, key_id))
    assert f"revoked key {key_id}" in revoked.stdout
    with pytest.raises(Unauthenticated):
        authenticate(cli_home, created["secret"])

    assert json_out(invoke("keys", "list", "-t", tenant, "--json")) == []
    [listed] = json_out(invoke("keys", "list", "-t", tenant, "--all", "--json"))
    assert listed["key_id"] == key_id
    assert listed["revoked_at"] is not None
    assert "revoked" in ok(invoke("keys", "list", "-t", tenant, "--all")).stdout


def test_suspended_tenant_keys_are_refused(invoke: Invoke, cli_home: Path) -> None:
    tenant = new_tenant(invoke)
    secret = json_out(invoke("keys", "create", "-t", tenant, "--json"))["secret"]
    ok(invoke("tenants", "suspend", tenant, "--reason", "audit"))
    with pytest.raises(TenantSuspended):
        authenticate(cli_home, secret)
    ok(invoke("tenants", "resume", tenant))
    assert authenticate(cli_home, secret).tenant_id == tenant


def test_unknown_tenant_or_key(invoke: Invoke) -> None:
    missing = slug("nobody")
    assert f"no tenant '{missing}'" in refused(invoke("keys", "create", "-t", missing))
    assert f"no tenant '{missing}'" in refused(invoke("keys", "list", "-t", missing))
    tenant = new_tenant(invoke)
    assert "no API key 'abcdefghij'" in refused(
        invoke("keys", "revoke", "-t", tenant, "abcdefghij")
    )
