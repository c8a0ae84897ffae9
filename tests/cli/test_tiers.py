"""``deskpilot tiers ...``: the tier layer every tenant on the tier inherits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Invoke, json_out, ok, refused, slug


@pytest.fixture
def pro_tier(invoke: Invoke) -> Iterator[str]:
    """The pro tier, its layer put back afterwards."""
    before = json_out(invoke("tiers", "show", "pro", "--json"))["config"]
    yield "pro"
    ok(invoke("tiers", "unset", "pro", "keys"))
    for section, values in before.items():
        for name, value in values.items():
            ok(invoke("tiers", "set", "pro", f"{section}.{name}", json.dumps(value)))
    assert json_out(invoke("tiers", "show", "pro", "--json"))["config"] == before


def test_list_and_show(invoke: Invoke) -> None:
    tiers = json_out(invoke("tiers", "list", "--json"))
    assert {"free", "pro", "enterprise"} <= {t["name"] for t in tiers}
    pro = json_out(invoke("tiers", "show", "pro", "--json"))
    assert pro["config"]["keys"]["max_active_keys"] == 25
    plain = ok(invoke("tiers", "show", "pro")).stdout
    assert "keys.max_active_keys = 25" in plain
    assert "no tier 'gold'" in refused(invoke("tiers", "show", "gold"))


def test_set_reaches_tenants_on_the_tier(invoke: Invoke, pro_tier: str) -> None:
    tenant = slug("tiered")
    ok(invoke("tenants", "create", tenant, "--name", "On Pro", "--tier", pro_tier))

    result = ok(invoke("tiers", "set", pro_tier, "keys.max_active_keys", "40"))
    assert "keys.max_active_keys = 40" in result.stdout
    assert json_out(invoke("tiers", "show", pro_tier, "--json"))["config"]["keys"] == {
        "max_active_keys": 40
    }
    effective = json_out(invoke("config", "show", "-t", tenant, "--json"))["effective"]
    assert effective["keys"]["max_active_keys"] == 40

    ok(invoke("tiers", "unset", pro_tier, "keys.max_active_keys"))
    effective = json_out(invoke("config", "show", "-t", tenant, "--json"))["effective"]
    assert effective["keys"]["max_active_keys"] == 20  # the platform default


def test_an_invalid_value_is_refused_and_changes_nothing(invoke: Invoke, pro_tier: str) -> None:
    before = json_out(invoke("tiers", "show", pro_tier, "--json"))
    error = refused(invoke("tiers", "set", pro_tier, "keys.max_active_keys", "0"))
    assert "  keys.max_active_keys: " in error
    assert "config unset" not in error
    assert "tiers unset" in refused(
        invoke("tiers", "set", pro_tier, "keys.max_active_keys", "null")
    )
    assert json_out(invoke("tiers", "show", pro_tier, "--json")) == before
