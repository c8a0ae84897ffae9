"""Output helpers: one JSON document for ``--json``, aligned plain text otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import typer
from pydantic_core import to_jsonable_python


def emit_json(value: object) -> None:
    """The whole of stdout for a ``--json`` command (pydantic's JSON mode for models)."""
    typer.echo(json.dumps(to_jsonable_python(value), indent=2, ensure_ascii=False))


def note(text: str) -> None:
    """Human guidance that is not the command's output: stderr."""
    typer.echo(text, err=True)


def when(value: datetime | None, *, never: str = "-") -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else never


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    """``name:  value`` lines, aligned."""
    items = [(k, str(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0) + 1
    return "\n".join(f"{(k + ':').ljust(width)}  {v}" for k, v in items)


def value_text(value: object) -> str:
    """A setting's value as JSON, the form ``config set`` accepts."""
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def flatten(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted paths to leaf values: ``{"keys": {"max_active_keys": 3}}`` ->
    ``[("keys.max_active_keys", 3)]`` (an empty section stays as ``{}``)."""
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(flatten(value, path + "."))
        else:
            out.append((path, value))
    return out


def settings_lines(doc: Mapping[str, Any], *, indent: str = "") -> str:
    pairs = flatten(doc)
    if not pairs:
        return f"{indent}(none)"
    return "\n".join(f"{indent}{path} = {value_text(value)}" for path, value in pairs)
