"""Who is calling: the immutable tenant context every service and repository takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from deskpilot.core.errors import MissingScope

Section = TypeVar("Section", bound=BaseModel)


class Scope(StrEnum):
    LLM = "llm"
    KB_READ = "kb:read"
    KB_WRITE = "kb:write"
    PROMPTS = "prompts"
    AGENTS = "agents"
    USAGE_READ = "usage:read"
    TENANT_ADMIN = "tenant:admin"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


@dataclass(frozen=True, slots=True)
class TenantContext:
    """Resolved once from a credential; passed keyword-only as ``tenant=`` everywhere.

    ``config`` is the effective configuration (platform < tier < tenant) as plain, read-only
    data; components read their own section from it.
    """

    tenant_id: str
    tier: str
    config: Mapping[str, Any] = field(repr=False)
    principal: str
    scopes: frozenset[Scope]
    key_id: str | None = None
    billing_anchor_day: int = 1  # billing periods start on this day of the month (UTC)
    _parsed: dict[tuple[str, type[BaseModel]], BaseModel] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.TENANT_ADMIN in self.scopes

    def require(self, scope: Scope) -> None:
        if not self.has(scope):
            raise MissingScope(f"this operation needs the '{scope.value}' scope")

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.config.get(name, {})
        return value if isinstance(value, Mapping) else {}

    def parsed(self, name: str, model: type[Section]) -> Section:
        """Section ``name`` validated as ``model`` (a frozen pydantic model), once per context:
        its config never changes, and the credential cache hands out the same context to
        every request of a key, so hot paths do not validate the same section every time."""
        key = (name, model)
        found = self._parsed.get(key)
        if found is None:
            if not model.model_config.get("frozen"):
                raise TypeError(f"{model.__name__} must be frozen to be shared")
            found = self._parsed[key] = model.model_validate(dict(self.section(name)))
        return cast(Section, found)


@dataclass(frozen=True, slots=True)
class OperatorContext:
    """A platform operator (admin). Never accepted where a tenant is expected."""

    principal: str
