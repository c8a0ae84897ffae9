"""The generated parts of the docs stay true: every setting, route, built-in config field, error
type and CLI command the code defines is named in the page that documents it.

Pure file reads and imports: no database, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from deskpilot.app import create_app
from deskpilot.components import BUILTIN
from deskpilot.core.errors import DeskpilotError
from deskpilot.core.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONFIGURATION = DOCS / "operators" / "configuration.md"
HTTP_API = DOCS / "integrators" / "http-api.md"
CLI = DOCS / "cli.md"


def _read(page: Path) -> str:
    assert page.is_file(), f"missing documentation page {page.relative_to(DOCS.parent)}"
    return page.read_text(encoding="utf-8")


def _mentions(text: str, name: str) -> bool:
    """``name`` as a whole token: ``/v1/keys`` is not found inside ``/v1/keys/{key_id}``, nor
    ``keys.max`` inside ``keys.max_active_keys``."""
    return re.search(rf"(?<![\w./{{-]){re.escape(name)}(?![\w/{{}}-])", text) is not None


def _missing(page: Path, names: set[str]) -> list[str]:
    text = _read(page)
    return sorted(name for name in names if not _mentions(text, name))


def _aliases(alias: Any) -> set[str]:
    """Environment names of one field: a str, or pydantic's AliasChoices / AliasPath."""
    if alias is None:
        return set()
    if isinstance(alias, str):
        return {alias}
    choices = getattr(alias, "choices", None)
    if choices is not None:
        return {name for choice in choices for name in _aliases(choice)}
    path = getattr(alias, "path", None)
    if path:
        return {str(path[0])}
    return set()


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        found = _aliases(field.validation_alias) | _aliases(field.alias)
        assert found, f"Settings.{name} has no environment alias"
        names |= found
    return names


def _error_types() -> set[str]:
    def walk(cls: type[DeskpilotError]) -> Iterator[type[DeskpilotError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from walk(sub)

    return {cls.type for cls in walk(DeskpilotError)}


def _config_fields() -> set[str]:
    return {
        f"{section.name}.{field}"
        for component in BUILTIN
        for section in component.config_sections
        for field in section.model.model_fields
    }


def _cli_commands() -> set[str]:
    """Every command and group below the root by its path: 'serve', 'tenants', 'tenants create'."""
    from deskpilot.cli import app

    def walk(command: Any, parents: tuple[str, ...]) -> Iterator[str]:
        # typer vendors its own click: walk by shape, not by click.Group.
        for name, sub in (getattr(command, "commands", None) or {}).items():
            path = (*parents, name)
            yield " ".join(path)
            yield from walk(sub, path)

    return set(walk(typer.main.get_command(app), ()))


def test_every_setting_is_in_configuration_md() -> None:
    names = _setting_names()
    assert names
    missing = _missing(CONFIGURATION, names)
    assert not missing, f"settings not documented in docs/operators/configuration.md: {missing}"


def test_every_route_is_in_http_api_md() -> None:
    paths = set(create_app().openapi()["paths"])
    assert paths
    missing = _missing(HTTP_API, paths)
    assert not missing, f"routes not documented in docs/integrators/http-api.md: {missing}"


def test_every_builtin_config_field_is_in_configuration_md() -> None:
    fields = _config_fields()
    assert fields
    missing = _missing(CONFIGURATION, fields)
    assert not missing, (
        f"config fields not documented (as section.field) in docs/operators/configuration.md: "
        f"{missing}"
    )


def test_every_error_type_is_in_http_api_md() -> None:
    types = _error_types()
    assert "not_found" in types
    missing = _missing(HTTP_API, types)
    assert not missing, f"error types not documented in docs/integrators/http-api.md: {missing}"


def test_every_cli_command_is_in_cli_md() -> None:
    if not CLI.exists():
        pytest.skip("docs/cli.md not written")
    commands = _cli_commands()
    assert "serve" in commands
    missing = _missing(CLI, commands)
    assert not missing, f"CLI commands not documented in docs/cli.md: {missing}"
