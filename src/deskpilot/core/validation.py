"""Pydantic refusals as ``ValidationFailed``: one ``FieldError`` per field, by dotted path, with
pydantic's message and never the refused input (which may be a credential or a document)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from deskpilot.core.errors import FieldError, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)


def field_errors(exc: ValidationError, *, prefix: str = "") -> tuple[FieldError, ...]:
    def path(loc: tuple[int | str, ...]) -> str:
        return ".".join([prefix, *map(str, loc)] if prefix else map(str, loc)) or "body"

    return tuple(FieldError(path(e["loc"]), e["msg"]) for e in exc.errors(include_input=False))


def parsed(model: type[Model], body: Model | Mapping[str, Any], *, detail: str) -> Model:
    """``body`` as ``model`` (as given when it already is one), or ``ValidationFailed``."""
    if isinstance(body, model):
        return body
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        # Without the pydantic error as cause: its text quotes the refused input.
        raise ValidationFailed(detail, field_errors(exc)) from None
