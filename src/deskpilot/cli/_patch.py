"""``PATH VALUE`` arguments of ``config set`` and ``tiers set`` as JSON merge patches."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from deskpilot.cli._common import CliError

PathArg = Annotated[
    str, typer.Argument(help="Dotted setting path, e.g. keys.max_active_keys.", show_default=False)
]
ValueArg = Annotated[
    str,
    typer.Argument(
        help='The value: JSON if it parses (5, true, ["llm"], "text"), otherwise a plain string.',
        show_default=False,
    ),
]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_no_constants)  # NaN/Infinity: keep the string
    except ValueError:
        return raw


def path_parts(path: str) -> list[str]:
    parts = path.split(".")
    if any(not p.strip() for p in parts):
        raise CliError(
            f"invalid setting path {path!r}: use dotted names such as keys.max_active_keys"
        )
    return parts


def patch_for(path: str, value: Any) -> dict[str, Any]:
    """The merge patch that sets ``path`` to ``value`` (``None`` removes it)."""
    patch: Any = value
    for part in reversed(path_parts(path)):
        patch = {part: patch}
    result: dict[str, Any] = patch
    return result


def set_patch(path: str, raw: str, *, unset_hint: str) -> tuple[Any, dict[str, Any]]:
    """Parse ``raw`` and build the patch; ``null`` is refused (it would remove the setting)."""
    value = parse_value(raw)
    if value is None:
        raise CliError(f"null would remove {path}: use '{unset_hint}' for that")
    return value, patch_for(path, value)


def lookup(doc: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """``(found, value)`` at a dotted path."""
    node: Any = doc
    for part in path_parts(path):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node
