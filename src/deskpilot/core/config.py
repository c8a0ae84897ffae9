"""Layered, typed tenant configuration: platform defaults < tier < tenant overrides.

Layers are stored as partial JSON documents. The effective configuration is the deep merge of
the three, validated against the schema that the installed components declare. Writes are
JSON merge patches (RFC 7396: ``null`` removes an override) validated before they are stored;
a refusal names the dotted path of each offending field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, create_model

from deskpilot.core.component import ConfigSection
from deskpilot.core.errors import FieldError, Forbidden, ValidationFailed

REDACTED = "**redacted**"
JSON = dict[str, Any]


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> JSON:
    """RFC 7396 JSON merge patch, returning a new document."""
    result: JSON = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        elif isinstance(value, Mapping):
            result[key] = merge_patch({}, value)
        else:
            result[key] = value
    return result


def deep_merge(*layers: Mapping[str, Any]) -> JSON:
    merged: JSON = {}
    for layer in layers:
        merged = merge_patch(merged, layer)
    return merged


def _paths(doc: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _paths(value, path + ".")
        else:
            yield path


def _secret_paths(model: type[BaseModel], prefix: str = "") -> Iterable[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _secret_paths(annotation, f"{prefix}{name}.")
        elif SecretStr in getattr(annotation, "__args__", ()) or annotation is SecretStr:
            yield f"{prefix}{name}"


class ConfigSchema:
    """The configuration schema assembled from the installed components' sections."""

    def __init__(self, sections: Sequence[ConfigSection]) -> None:
        names = [s.name for s in sections]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate config sections: {names}")
        self.sections = {s.name: s for s in sections}
        fields: dict[str, Any] = {s.name: (s.model, s.model()) for s in sections}
        self.model: type[BaseModel] = create_model(
            "EffectiveConfig",
            __config__=ConfigDict(extra="forbid", frozen=True),
            **fields,
        )
        self.secret_paths = frozenset(
            f"{s.name}.{p}" for s in sections for p in _secret_paths(s.model)
        )

    def defaults(self) -> JSON:
        return self.dump(self.model())

    def dump(self, config: BaseModel) -> JSON:
        """JSON form with secrets in clear (for storage); see ``redact`` for display."""
        data: JSON = config.model_dump(mode="json")
        for path in self.secret_paths:
            section, _, rest = path.partition(".")
            value: Any = config
            for part in [section, *rest.split(".")]:
                value = getattr(value, part)
            _set_path(data, path, value.get_secret_value() if value is not None else None)
        return data

    def validate(self, document: Mapping[str, Any]) -> BaseModel:
        try:
            return self.model.model_validate(document)
        except ValidationError as exc:
            raise ValidationFailed(
                "configuration refused",
                tuple(
                    dict.fromkeys(
                        FieldError(_document_path(document, err["loc"]), err["msg"])
                        for err in exc.errors()
                    )
                ),
            ) from exc

    def effective(self, *layers: Mapping[str, Any]) -> JSON:
        return self.dump(self.validate(deep_merge(self.defaults(), *layers)))

    def check_tenant_editable(self, patch: Mapping[str, Any]) -> None:
        refused = [
            FieldError(path, "only the platform operator may change this setting")
            for path in _paths(patch)
            if not self._tenant_editable(path)
        ]
        if refused:
            raise Forbidden("these settings are managed by the platform operator", tuple(refused))

    def _tenant_editable(self, path: str) -> bool:
        section = self.sections.get(path.partition(".")[0])
        return section is None or section.tenant_editable  # unknown: validation names it

    def redact(self, document: Mapping[str, Any]) -> JSON:
        """A copy safe to show or log: every secret-typed value replaced."""
        redacted = deep_merge(document)
        for path in self.secret_paths:
            if _get_path(redacted, path) is not None:
                _set_path(redacted, path, REDACTED)
        return redacted


def _document_path(document: Any, loc: tuple[int | str, ...]) -> str:
    """The dotted path into the submitted document, without pydantic's union-member tags."""
    parts: list[str] = []
    node = document
    for part in loc:
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, (list, tuple)) and isinstance(part, int):
            node = node[part] if part < len(node) else None
        else:
            break
        parts.append(str(part))
    return ".".join(parts)


def _get_path(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _set_path(doc: JSON, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
