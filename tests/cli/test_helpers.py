"""The CLI's pure helpers: PATH/VALUE parsing, output formatting (no database)."""

from __future__ import annotations

import json

import pytest

from deskpilot.cli._common import CliError, SchemaState
from deskpilot.cli._output import flatten, settings_lines, table
from deskpilot.cli._patch import lookup, parse_value, patch_for, set_patch
from deskpilot.cli.serve import banner
from deskpilot.core.settings import Settings


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("5", 5),
        ("-1", -1),
        ("2.5", 2.5),
        ("true", True),
        ('"5"', "5"),
        ('["llm", "kb:read"]', ["llm", "kb:read"]),
        ('{"a": 1}', {"a": 1}),
        ("Europe/Paris", "Europe/Paris"),
        ("[llm, kb:read]", "[llm, kb:read]"),  # not JSON: the string as typed
        ("NaN", "NaN"),  # JSON extensions stay strings
        ("", ""),
    ],
)
def test_values_are_json_if_they_parse(raw: str, value: object) -> None:
    assert parse_value(raw) == value
    assert type(parse_value(raw)) is type(value)


def test_patch_for_builds_a_nested_merge_patch() -> None:
    assert patch_for("keys.max_active_keys", 5) == {"keys": {"max_active_keys": 5}}
    assert patch_for("a.b.c", None) == {"a": {"b": {"c": None}}}
    assert patch_for("general", {"locale": "fr"}) == {"general": {"locale": "fr"}}


@pytest.mark.parametrize("path", ["", ".", "keys.", ".keys", "keys..x", "keys. .x"])
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(CliError, match="invalid setting path"):
        patch_for(path, 1)


def test_set_refuses_null_pointing_to_unset() -> None:
    with pytest.raises(CliError, match="deskpilot config unset"):
        set_patch("keys.max_active_keys", "null", unset_hint="deskpilot config unset")
    assert set_patch("general.locale", "fr", unset_hint="x") == (
        "fr",
        {"general": {"locale": "fr"}},
    )


def test_lookup() -> None:
    doc = {"keys": {"max_active_keys": 3, "max_lifetime_days": None}}
    assert lookup(doc, "keys.max_active_keys") == (True, 3)
    assert lookup(doc, "keys.max_lifetime_days") == (True, None)
    assert lookup(doc, "keys.missing") == (False, None)
    assert lookup(doc, "keys.max_active_keys.deeper") == (False, None)


def test_flatten_and_settings_lines() -> None:
    doc = {"keys": {"max_active_keys": 3, "allowed_scopes": ["llm"]}, "empty": {}}
    assert flatten(doc) == [
        ("keys.max_active_keys", 3),
        ("keys.allowed_scopes", ["llm"]),
        ("empty", {}),
    ]
    assert settings_lines(doc).splitlines() == [
        "keys.max_active_keys = 3",
        'keys.allowed_scopes = ["llm"]',
        "empty = {}",
    ]
    assert settings_lines({}, indent="  ") == "  (none)"
    # every value is printed as JSON: what 'config set' reads back
    assert json.loads(settings_lines({"a": "x y"}).split(" = ", 1)[1]) == "x y"


def test_table_aligns_columns() -> None:
    assert table(["A", "LONG"], [("xyz", 1), ("", "22")]).splitlines() == [
        "A    LONG",
        "xyz  1",
        "     22",
    ]
    assert table(["ONLY", "HEADERS"], []) == "ONLY  HEADERS"


def test_schema_state_messages() -> None:
    assert SchemaState("0002", "0002", known=True).problem is None
    assert SchemaState(None, "0002", known=False).problem == (
        "database schema is at none (empty database), code expects 0002: run 'deskpilot migrate'"
    )
    assert SchemaState("0001", "0002", known=True).problem == (
        "database schema is at 0001, code expects 0002: run 'deskpilot migrate'"
    )
    newer = SchemaState("0009", "0002", known=False).problem
    assert newer is not None
    assert "upgrade deskpilot" in newer
    assert "deskpilot migrate" not in newer


def test_banner_says_where_things_are_and_never_the_token() -> None:
    token = "dpo_" + "s" * 48
    settings = Settings.model_validate(
        {
            "DESKPILOT_HOME": "/srv/dp",
            "DESKPILOT_ADMIN_TOKEN": token,
            "DATABASE_URL": None,
            "REDIS_URL": None,
        }
    )
    lines = banner(settings, "0.0.0.0", 9000, 4)  # noqa: S104
    text = "\n".join(lines)
    assert lines[0].startswith("deskpilot serving on http://127.0.0.1:9000  (docs: ")
    assert "all interfaces (0.0.0.0)" in lines[0]
    assert "data: embedded PostgreSQL in /srv/dp/pgdata" in text
    assert "operator token: from DESKPILOT_ADMIN_TOKEN" in text
    assert "one per worker" in text
    assert token not in text

    external = Settings.model_validate(
        {
            "DESKPILOT_HOME": "/srv/dp",
            "DATABASE_URL": "postgresql://dp:hunter2@db:5432/dp",
            "REDIS_URL": None,
            "DESKPILOT_ADMIN_TOKEN": None,
        }
    )
    text = "\n".join(banner(external, "::1", 8000, 1))
    assert "http://[::1]:8000" in text
    assert "hunter2" not in text
    assert "db:5432/dp" in text
    assert "operator token: in /srv/dp/admin-token" in text
