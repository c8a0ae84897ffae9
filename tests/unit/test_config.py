from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from deskpilot.core.component import ConfigSection
from deskpilot.core.config import REDACTED, ConfigSchema, deep_merge, merge_patch
from deskpilot.core.errors import Forbidden, ValidationFailed
from deskpilot.tenancy.config import SECTIONS


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = ""
    signing_secret: SecretStr | None = None


@pytest.fixture
def schema() -> ConfigSchema:
    return ConfigSchema([*SECTIONS, ConfigSection("webhook", Webhook, tenant_editable=True)])


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": "x"}
    patch = {"a": {"b": None, "z": 3}, "d": [3], "e": None, "f": {"g": None}}
    assert merge_patch(target, patch) == {"a": {"c": 2, "z": 3}, "d": [3], "f": {}}
    assert target == {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": "x"}  # not mutated


def test_layers_apply_platform_then_tier_then_tenant(schema: ConfigSchema) -> None:
    tier = {"keys": {"max_active_keys": 3}, "general": {"locale": "de"}}
    tenant = {"general": {"locale": "fr-CA"}}
    effective = schema.effective(tier, tenant)
    assert effective["keys"]["max_active_keys"] == 3
    assert effective["general"] == {"timezone": "UTC", "locale": "fr-CA"}
    assert effective["security"] == {"ip_allowlist": []}


def test_invalid_values_are_refused_with_their_paths(schema: ConfigSchema) -> None:
    with pytest.raises(ValidationFailed) as caught:
        schema.effective(
            {"keys": {"max_active_keys": 0, "colour": "red"}},
            {"general": {"timezone": "Mars/Olympus"}, "nosuch": {}},
        )
    paths = {e.path for e in caught.value.errors}
    assert paths == {"keys.max_active_keys", "keys.colour", "general.timezone", "nosuch"}


def test_tenant_cannot_patch_operator_sections(schema: ConfigSchema) -> None:
    schema.check_tenant_editable({"general": {"locale": "en"}, "security": {"ip_allowlist": []}})
    with pytest.raises(Forbidden) as caught:
        schema.check_tenant_editable({"general": {"locale": "en"}, "keys": {"max_active_keys": 99}})
    assert [e.path for e in caught.value.errors] == ["keys.max_active_keys"]


def test_secrets_are_stored_but_redacted_for_display(schema: ConfigSchema) -> None:
    effective = schema.effective({}, {"webhook": {"url": "https://x", "signing_secret": "s3cr3t"}})
    assert effective["webhook"]["signing_secret"] == "s3cr3t"
    shown = schema.redact(effective)
    assert shown["webhook"] == {"url": "https://x", "signing_secret": REDACTED}
    assert "s3cr3t" not in repr(shown)
    assert schema.redact({"general": {"locale": "en"}}) == {"general": {"locale": "en"}}


def test_duplicate_sections_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        ConfigSchema([*SECTIONS, SECTIONS[0]])


def test_deep_merge_of_no_layers_is_empty() -> None:
    assert deep_merge() == {}
