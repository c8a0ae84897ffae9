"""A component's public surface is its ``__init__``: nothing outside a component imports its
internals, except the app wiring its routers and the migrations loading its tables (``api`` and
``models`` modules, in the component or in one of its sub-packages)."""

from __future__ import annotations

import ast
from pathlib import Path

import deskpilot

PACKAGE = Path(deskpilot.__file__).parent
COMPONENTS = ("tenancy", "gateway", "rag", "prompts", "cache", "agents", "metering", "quotas")
ALLOWED = {
    ("deskpilot.app", "api"),  # includes each component's router
    ("deskpilot.migrations", "models"),  # registers each component's tables
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            # ``from deskpilot.x import service`` imports a submodule, not a name
            folder = PACKAGE.parent.joinpath(*node.module.split("."))
            found.extend(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if (folder / f"{alias.name}.py").exists() or (folder / alias.name).is_dir()
            )
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _violations() -> list[str]:
    bad: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        importer = _module_name(path)
        for target in _imports(path):
            parts = target.split(".")
            if len(parts) < 3 or parts[0] != "deskpilot" or parts[1] not in COMPONENTS:
                continue
            component = parts[1]
            if importer == f"deskpilot.{component}" or importer.startswith(
                f"deskpilot.{component}."
            ):
                continue
            module = parts[-1]
            if any(importer.startswith(p) and module == m for p, m in ALLOWED):
                continue
            bad.append(f"{importer} imports {target}")
    return bad


def test_components_are_used_through_their_public_surface() -> None:
    assert _violations() == []


def test_the_check_sees_imports() -> None:
    assert "deskpilot.tenancy" in _imports(PACKAGE / "platform.py")
