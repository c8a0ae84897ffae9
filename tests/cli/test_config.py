"""``deskpilot config ...``: a tenant's overrides, validated before anything is stored."""

from __future__ import annotations

from typing import Any

from tests.cli.conftest import Invoke, json_out, ok, refused, slug


def new_tenant(invoke: Invoke) -> str:
    tenant = slug("conf")
    ok(invoke("tenants", "create", tenant, "--name", "Configured", "--tier", "free"))
    return tenant


def config(invoke: Invoke, tenant: str) -> Any:
    return json_out(invoke("config", "show", "--tenant", tenant, "--layers", "--json"))


def test_show_effective_configuration(invoke: Invoke) -> None:
    tenant = new_tenant(invoke)
    summary = json_out(invoke("config", "show", "-t", tenant, "--json"))
    assert set(summary) == {"tenant_id", "tier", "revision", "effective"}
    assert summary["effective"]["keys"]["max_active_keys"] == 3  # the free tier's layer

    layers = config(invoke, tenant)
    assert layers["platform"]["keys"]["max_active_keys"] == 20
    assert layers["tier_layer"]["keys"] == {"max_active_keys": 3}
    assert layers["overrides"] == {}

    plain = ok(invoke("config", "show", "-t", tenant)).stdout
    assert "keys.max_active_keys = 3" in plain.splitlines()
    assert 'general.timezone = "UTC"' in plain.splitlines()


def test_set_then_unset(invoke: Invoke) -> None:
    tenant = new_tenant(invoke)
    before = config(invoke, tenant)

    result = ok(invoke("config", "set", "-t", tenant, "keys.max_active_keys", "7"))
    assert "keys.max_active_keys = 7" in result.stdout
    after = config(invoke, tenant)
    assert after["overrides"] == {"keys": {"max_active_keys": 7}}
    assert after["effective"]["keys"]["max_active_keys"] == 7
    assert after["revision"] == before["revision"] + 1

    unset = ok(invoke("config", "unset", "-t", tenant, "keys.max_active_keys"))
    assert "effective value now 3" in unset.stdout
    after_unset = config(invoke, tenant)
    assert after_unset["overrides"] == {"keys": {}}  # merge patch keeps the emptied section
    assert after_unset["effective"]["keys"]["max_active_keys"] == 3

    again = ok(invoke("config", "unset", "-t", tenant, "keys.max_active_keys"))
    assert "is not overridden" in again.stdout


def test_values_are_json_when_they_parse_and_strings_otherwise(invoke: Invoke) -> None:
    tenant = new_tenant(invoke)
    ok(invoke("config", "set", "-t", tenant, "general.timezone", "Europe/Paris"))
    ok(invoke("config", "set", "-t", tenant, "security.ip_allowlist", '["10.0.0.0/8"]'))
    ok(invoke("config", "set", "-t", tenant, "keys.allowed_scopes", '["llm", "kb:read"]'))
    effective = config(invoke, tenant)["effective"]
    assert effective["general"]["timezone"] == "Europe/Paris"
    assert effective["security"]["ip_allowlist"] == ["10.0.0.0/8"]
    assert effective["keys"]["allowed_scopes"] == ["llm", "kb:read"]


def test_an_invalid_value_is_refused_with_its_path_and_changes_nothing(invoke: Invoke) -> None:
    tenant = new_tenant(invoke)
    ok(invoke("config", "set", "-t", tenant, "keys.max_active_keys", "5"))
    before = config(invoke, tenant)

    for path, value in (
        ("keys.max_active_keys", "0"),
        ("keys.max_active_keys", "-1"),  # a negative number is a value, not an option
        ("keys.max_active_keys", "many"),
        ("general.timezone", "Mars/Olympus_Mons"),
        ("keys.no_such_setting", "1"),
    ):
        error = refused(invoke("config", "set", "-t", tenant, path, value))
        assert "configuration refused" in error
        assert f"  {path}: " in error, (path, error)

    assert config(invoke, tenant) == before


def test_null_and_malformed_paths_are_refused(invoke: Invoke) -> None:
    tenant = new_tenant(invoke)
    before = config(invoke, tenant)
    assert "config unset" in refused(
        invoke("config", "set", "-t", tenant, "keys.max_active_keys", "null")
    )
    assert "invalid setting path" in refused(invoke("config", "set", "-t", tenant, "keys..x", "1"))
    assert config(invoke, tenant) == before


def test_unknown_tenant(invoke: Invoke) -> None:
    missing = slug("nobody")
    assert f"no tenant '{missing}'" in refused(invoke("config", "show", "-t", missing))
    assert f"no tenant '{missing}'" in refused(
        invoke("config", "set", "-t", missing, "general.locale", "fr")
    )
