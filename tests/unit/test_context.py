from __future__ import annotations

import dataclasses

import pytest

from deskpilot.core.context import Scope, TenantContext
from deskpilot.core.errors import MissingScope
from deskpilot.core.frozen import freeze, thaw
from deskpilot.tenancy.schemas import TenantCreate


def _context(*scopes: Scope) -> TenantContext:
    return TenantContext(
        tenant_id="acme",
        tier="pro",
        config=freeze({"general": {"locale": "en"}, "list": [1, {"a": 2}]}),
        principal="key:x",
        scopes=frozenset(scopes),
    )


def test_context_and_its_config_are_immutable() -> None:
    context = _context(Scope.LLM)
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.tenant_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        context.config["general"]["locale"] = "de"  # type: ignore[index]
    assert thaw(context.config) == {"general": {"locale": "en"}, "list": [1, {"a": 2}]}


def test_scopes_are_checked_and_tenant_admin_holds_all() -> None:
    _context(Scope.LLM).require(Scope.LLM)
    with pytest.raises(MissingScope, match="kb:read"):
        _context(Scope.LLM).require(Scope.KB_READ)
    admin = _context(Scope.TENANT_ADMIN)
    assert all(admin.has(scope) for scope in Scope)


@pytest.mark.parametrize("slug", ["ab", "Acme", "1acme", "acme-", "ac--me", "a" * 41, "acme_x", ""])
def test_invalid_slugs_are_refused(slug: str) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        TenantCreate(tenant_id=slug, display_name="x")


@pytest.mark.parametrize("slug", ["abc", "acme-corp", "a1b", "x" * 40])
def test_valid_slugs_are_accepted(slug: str) -> None:
    assert TenantCreate(tenant_id=slug, display_name="x").tenant_id == slug
