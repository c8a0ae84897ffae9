"""The operator's deployments file (``deskpilot serve --config FILE``), in LiteLLM's shape.

LiteLLM users bring their ``model_list`` as it is::

    model_list:
      - model_name: gpt-4o                       # the alias clients ask for
        litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, rpm: 500}
        model_info: {input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}
      - model_name: gpt-4o                       # same alias again: load-balanced
        litellm_params: {model: azure/gpt-4o-eu, api_base: https://x.openai.azure.com/openai/v1}
    router_settings: {num_retries: 2, timeout: 30, fallbacks: [{gpt-4o: [claude-sonnet]}]}
    deskpilot: {fallbacks: {gpt-4o: [claude-sonnet]}, default_alias: gpt-4o}

Top-level sections other than these (``litellm_settings``, ``general_settings``, ...) and keys
we do not use inside LiteLLM's own sections are ignored and reported in ``LoadedConfig.ignored``
(by path, never by value). Our own ``deskpilot`` section is strict. Every problem in what is
used is collected into one ``ValidationFailed`` naming dotted paths; an ``os.environ/NAME``
that is unset stops start-up with a ``SetupError`` naming the variables.
"""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from deskpilot.core.errors import FieldError, SetupError, ValidationFailed
from deskpilot.gateway.config_litellm import DeploymentPrice, Findings, ParsedEntry, parse_entry
from deskpilot.gateway.providers.litellm_adapter import INSTALL_HINT, litellm_installed
from deskpilot.gateway.schemas import LITELLM_PROVIDER, Deployment

__all__ = [
    "DeploymentPrice",
    "GatewayConfig",
    "LoadedConfig",
    "load_gateway_config",
    "load_gateway_config_file",
]

_SECTIONS = ("model_list", "router_settings", "deskpilot")
_ROUTER_USED = frozenset({"num_retries", "timeout", "fallbacks"})
_OURS = frozenset({"fallbacks", "default_alias"})
_MAX_RETRIES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """Deployments by alias (several: load-balanced), fallback aliases in order, the alias
    for requests that name none, the retry count (None: the policy's default) and the prices
    the file gives for upstream models."""

    deployments: Mapping[str, tuple[Deployment, ...]]
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_alias: str | None = None
    retries: int | None = None
    prices: tuple[DeploymentPrice, ...] = ()

    def price_overrides(self) -> dict[str, Any]:
        """The prices in the shape ``PriceTable.load(overrides)`` merges over the bundled
        table: provider -> models -> model -> USD per million tokens, as decimal strings.
        Each model's bundled alias is removed, so the lookup cannot route around the override."""
        providers: dict[str, Any] = {}
        for price in self.prices:
            model = price.model.strip().lower().removeprefix("models/")
            entry = providers.setdefault(price.provider, {"models": {}, "aliases": {}})
            entry["models"][model] = {
                "input": _plain(price.input),
                "cached_input": _plain(price.cached_input),
                "output": _plain(price.output),
            }
            entry["aliases"][model] = None
        return {"providers": providers} if providers else {}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: GatewayConfig
    ignored: tuple[str, ...]  # dotted paths of settings present but not used


def load_gateway_config(document: Mapping[str, Any], *, environ: Mapping[str, str]) -> LoadedConfig:
    """``document`` (a parsed deployments file) read into a ``GatewayConfig``."""
    if not isinstance(document, Mapping):
        raise ValidationFailed(
            "gateway configuration refused", (FieldError("", "must be a mapping"),)
        )
    findings = Findings()
    findings.ignored.extend(str(key) for key in document if key not in _SECTIONS)
    router = _section(document, "router_settings", findings)
    ours = _section(document, "deskpilot", findings)
    findings.ignored.extend(f"router_settings.{k}" for k in router if k not in _ROUTER_USED)
    for key in ours:
        if key not in _OURS:
            findings.refuse(f"deskpilot.{key}", f"unknown setting: expected {sorted(_OURS)}")
    retries = _retries(router, findings)
    entries = _model_list(document, environ, _timeout(router, findings), findings)
    aliases = _aliases(document)
    fallbacks = _fallbacks(router.get("fallbacks"), ours.get("fallbacks"), aliases, findings)
    default_alias = _default_alias(ours.get("default_alias"), aliases, findings)
    _check_unique_names(entries, findings)
    prices = _consistent_prices(entries, findings)
    if findings.errors:
        raise ValidationFailed("gateway configuration refused", tuple(findings.errors))
    if findings.missing_env:
        raise SetupError(
            "the gateway configuration reads environment variables that are unset or empty: "
            + "; ".join(findings.missing_env)
        )
    _check_litellm(entries)
    deployments: dict[str, list[Deployment]] = {}
    for entry in entries:
        deployments.setdefault(entry.alias, []).append(entry.deployment)
    config = GatewayConfig(
        deployments=MappingProxyType({a: tuple(d) for a, d in deployments.items()}),
        fallbacks=MappingProxyType(fallbacks),
        default_alias=default_alias,
        retries=retries,
        prices=prices,
    )
    return LoadedConfig(config, tuple(dict.fromkeys(findings.ignored)))


def load_gateway_config_file(
    path: str | Path, *, environ: Mapping[str, str] = os.environ
) -> LoadedConfig:
    """The deployments file at ``path`` (YAML; ``.json``: JSON), read and validated."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SetupError(f"cannot read the gateway configuration {path}: {reason}") from None
    document = _parse(path, text)
    if not isinstance(document, Mapping):
        raise SetupError(f"the gateway configuration {path} must be a mapping (model_list: ...)")
    try:
        return load_gateway_config(document, environ=environ)
    except ValidationFailed as exc:
        raise ValidationFailed(f"gateway configuration {path} refused", exc.errors) from None


def _parse(path: Path, text: str) -> Any:
    # Parse errors are reported by position only: PyYAML's own message quotes the offending
    # line, which may hold a literal key.
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SetupError(
                f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    try:
        # Imported by name: PyYAML ships no type stubs, and only this function needs it.
        yaml = importlib.import_module("yaml")
    except ModuleNotFoundError:
        raise SetupError(
            f"reading {path} needs the PyYAML package (pip install pyyaml), or give a .json file"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SetupError(f"{path} is not valid YAML: {problem}{where}") from None


def _check_litellm(entries: list[ParsedEntry]) -> None:
    """Deployments served through LiteLLM need it installed: said at start-up, not at the
    first request (checked without importing it, which takes seconds)."""
    aliases = sorted({e.alias for e in entries if e.deployment.provider == LITELLM_PROVIDER})
    if aliases and not litellm_installed():
        raise SetupError(
            "the gateway configuration has deployments served through LiteLLM, which is not "
            f"installed: {INSTALL_HINT} (needed by the aliases {', '.join(aliases)})"
        )


def _plain(amount: Any) -> str:
    return format(amount, "f")


def _section(document: Mapping[str, Any], name: str, findings: Findings) -> Mapping[str, Any]:
    value = document.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        findings.refuse(name, "must be a mapping")
        return {}
    return value


def _retries(router: Mapping[str, Any], findings: Findings) -> int | None:
    value = router.get("num_retries")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_RETRIES:
        findings.refuse("router_settings.num_retries", f"must be a whole number 0-{_MAX_RETRIES}")
        return None
    return value


def _timeout(router: Mapping[str, Any], findings: Findings) -> float | None:
    value = router.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        findings.refuse("router_settings.timeout", "must be a number of seconds > 0")
        return None
    return float(value)


def _model_list(
    document: Mapping[str, Any],
    environ: Mapping[str, str],
    default_timeout: float | None,
    findings: Findings,
) -> list[ParsedEntry]:
    entries = document.get("model_list")
    if not isinstance(entries, list) or not entries:
        findings.refuse("model_list", "required: a list of at least one deployment")
        return []
    ordinals: Counter[str] = Counter()
    parsed: list[ParsedEntry] = []
    for index, entry in enumerate(entries):
        alias = entry.get("model_name") if isinstance(entry, Mapping) else None
        ordinal = ordinals[alias] if isinstance(alias, str) else 0
        if isinstance(alias, str):
            ordinals[alias] += 1
        found = parse_entry(
            f"model_list.{index}",
            entry,
            ordinal=ordinal,
            environ=environ,
            default_timeout=default_timeout,
            findings=findings,
        )
        if found is not None:
            parsed.append(found)
    return parsed


def _aliases(document: Mapping[str, Any]) -> frozenset[str]:
    """Every alias the file names, including those of entries refused for other reasons (so
    a refusal there does not also turn each fallback to it into an error)."""
    entries = document.get("model_list")
    if not isinstance(entries, list):
        return frozenset()
    return frozenset(
        e["model_name"]
        for e in entries
        if isinstance(e, Mapping) and isinstance(e.get("model_name"), str)
    )


def _default_alias(value: Any, aliases: frozenset[str], findings: Findings) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in aliases:
        findings.refuse("deskpilot.default_alias", "must be a model_name of model_list")
        return None
    return value


def _check_unique_names(entries: list[ParsedEntry], findings: Findings) -> None:
    first: dict[str, str] = {}
    for entry in entries:
        name = entry.deployment.name
        if name in first:
            findings.refuse(
                f"{entry.path}.model_info.id",
                f"deployment name {name!r} is already used by {first[name]}",
            )
        else:
            first[name] = entry.path


def _consistent_prices(
    entries: list[ParsedEntry], findings: Findings
) -> tuple[DeploymentPrice, ...]:
    """Prices are keyed by provider and model: two deployments of one upstream model must not
    price it differently."""
    seen: dict[tuple[str, str], tuple[DeploymentPrice, str]] = {}
    for entry in entries:
        price = entry.price
        if price is None:
            continue
        key = (price.provider, price.model.strip().lower())
        earlier = seen.setdefault(key, (price, entry.path))
        if _amounts(earlier[0]) != _amounts(price):
            findings.refuse(
                f"{entry.path}.model_info",
                f"prices {price.provider}/{price.model} differently from {earlier[1]}: "
                "prices are per provider and model",
            )
    return tuple(p for p, _ in seen.values())


def _amounts(price: DeploymentPrice) -> tuple[Any, ...]:
    return (price.input, price.cached_input, price.output)


def _fallbacks(
    router_value: Any, ours_value: Any, aliases: frozenset[str], findings: Findings
) -> dict[str, tuple[str, ...]]:
    """Fallback aliases by alias, from LiteLLM's list of one-key mappings and from our own
    mapping; for an alias in both, ours wins (it is the deskpilot-specific refinement)."""
    chains: dict[str, tuple[str, ...]] = {}
    sources: dict[str, str] = {}
    if isinstance(router_value, list):
        for index, item in enumerate(router_value):
            where = f"router_settings.fallbacks.{index}"
            if isinstance(item, Mapping):
                _read_chains(where, item, aliases, chains, sources, findings)
            else:
                findings.refuse(where, "must be a mapping of alias to fallback aliases")
    elif router_value is not None:
        findings.refuse("router_settings.fallbacks", "must be a list of {alias: [aliases]}")
    if isinstance(ours_value, Mapping):
        _read_chains("deskpilot.fallbacks", ours_value, aliases, chains, sources, findings)
    elif ours_value is not None:
        findings.refuse("deskpilot.fallbacks", "must be a mapping of alias to fallback aliases")
    _check_cycles(chains, sources, findings)
    return chains


def _read_chains(
    path: str,
    given: Mapping[Any, Any],
    aliases: frozenset[str],
    chains: dict[str, tuple[str, ...]],
    sources: dict[str, str],
    findings: Findings,
) -> None:
    for alias, targets in given.items():
        where = f"{path}.{alias}"
        if alias not in aliases:
            findings.refuse(where, f"unknown alias {alias!r}: not a model_name of model_list")
            continue
        if not isinstance(targets, list) or not targets:
            findings.refuse(where, "must be a non-empty list of aliases")
            continue
        problems = len(findings.errors)
        for index, target in enumerate(targets):
            if not isinstance(target, str) or target not in aliases:
                findings.refuse(f"{where}.{index}", "unknown alias: not a model_name of model_list")
            elif targets.index(target) != index:
                findings.refuse(f"{where}.{index}", f"{target!r} is listed twice")
        if len(findings.errors) == problems:
            chains[alias], sources[alias] = tuple(targets), where


def _check_cycles(
    chains: Mapping[str, tuple[str, ...]], sources: Mapping[str, str], findings: Findings
) -> None:
    """A fallback must lead away from the alias that failed: refuse every cycle, once."""
    finished: set[str] = set()
    active: list[str] = []

    def visit(alias: str) -> None:
        active.append(alias)
        for target in chains.get(alias, ()):
            if target in active:
                cycle = [*active[active.index(target) :], target]
                findings.refuse(sources[alias], "fallback cycle: " + " -> ".join(cycle))
            elif target not in finished:
                visit(target)
        active.pop()
        finished.add(alias)

    for alias in chains:
        if alias not in finished:
            visit(alias)
