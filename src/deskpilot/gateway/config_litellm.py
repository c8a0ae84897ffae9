"""One entry of LiteLLM's ``model_list``, read into a deskpilot ``Deployment`` (and its price).

Only the prefixes a built-in provider serves are accepted (``ROUTES``); the long tail of
LiteLLM's providers needs an adapter that does not exist yet, so those entries are refused by
name rather than half-served. Values written ``os.environ/NAME`` (LiteLLM's syntax) are read
from the environment at load; no message built here ever contains a value, only paths and
variable names, because any of them may be a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from deskpilot.core.errors import FieldError
from deskpilot.gateway.schemas import Deployment

ENV_PREFIX = "os.environ/"
AZURE_V1_SUFFIX = "/openai/v1"
UNSET_BASE = "http://unset.invalid"  # RFC 2606: can never resolve


@dataclass(frozen=True, slots=True)
class Route:
    """Where a LiteLLM prefix goes: the deskpilot provider and its default endpoint (None:
    the entry must give ``api_base``)."""

    provider: str
    api_base: str | None


ROUTES: Mapping[str, Route] = MappingProxyType(
    {
        "openai": Route("openai", "https://api.openai.com/v1"),
        "azure": Route("openai", None),
        "ollama": Route("openai", "http://localhost:11434/v1"),
        "ollama_chat": Route("openai", "http://localhost:11434/v1"),
        "hosted_vllm": Route("openai", None),
        "anthropic": Route("anthropic", "https://api.anthropic.com"),
    }
)

_COSTS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost")
_PARAMS = frozenset(
    {"model", "api_base", "api_key", "rpm", "tpm", "timeout", "max_retries", "extra_headers"}
    | {"api_version", "custom_llm_provider", *_COSTS}
)
_INFO = frozenset({"id", *_COSTS})
_ENTRY = frozenset({"model_name", "litellm_params", "model_info"})
# Deployment field -> the litellm_params key it came from, to name refusals by document path.
_PARAM_OF = {"read_timeout": "timeout", "provider": "model"}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentPrice:
    """USD per million tokens of one deployment's upstream model: LiteLLM's per-token costs
    times 10^6, exactly. Without ``cache_read_input_token_cost`` a cache read costs the input
    price, as LiteLLM bills it."""

    deployment: str
    provider: str
    model: str
    input: Decimal
    cached_input: Decimal
    output: Decimal


@dataclass
class Findings:
    """Everything reading the document found, so that one refusal lists every problem."""

    errors: list[FieldError] = field(default_factory=list)
    missing_env: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def refuse(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    alias: str
    deployment: Deployment
    price: DeploymentPrice | None
    path: str  # model_list.<i>


def parse_entry(
    path: str,
    entry: Any,
    *,
    ordinal: int,
    environ: Mapping[str, str],
    default_timeout: float | None,
    findings: Findings,
) -> ParsedEntry | None:
    """The deployment of ``entry`` (at ``path``), or None after recording why not."""
    before = len(findings.errors)
    if not isinstance(entry, Mapping):
        findings.refuse(path, "must be a mapping with model_name and litellm_params")
        return None
    findings.ignored.extend(f"{path}.{key}" for key in entry if key not in _ENTRY)
    alias = entry.get("model_name")
    if not isinstance(alias, str) or not alias.strip():
        findings.refuse(f"{path}.model_name", "required: the alias clients ask for")
    params = _mapping(entry, "litellm_params", path, findings, required=True)
    info = _mapping(entry, "model_info", path, findings, required=False)
    if not isinstance(alias, str) or params is None or info is None:
        return None
    findings.ignored.extend(f"{path}.litellm_params.{k}" for k in params if k not in _PARAMS)
    findings.ignored.extend(f"{path}.model_info.{k}" for k in info if k not in _INFO)
    fields = _deployment_fields(f"{path}.litellm_params", params, environ, findings)
    if "read_timeout" not in fields and default_timeout is not None:
        fields["read_timeout"] = default_timeout
    name = info.get("id", f"{alias}#{ordinal}")
    name_path = f"{path}.model_info.id" if "id" in info else f"{path}.model_name"
    costs = _costs(path, params, info, findings)
    if "model" not in fields or not alias.strip():
        return None  # no deployment to check further without its model or alias
    refused = {error.path for error in findings.errors[before:]}
    try:
        deployment = Deployment.model_validate({**fields, "name": name})
    except ValidationError as exc:
        # Only pydantic's message is kept: its input value may be a key or a header secret.
        for err in exc.errors():
            target = str(err["loc"][0]) if err["loc"] else ""
            where = (
                name_path
                if target == "name"
                else f"{path}.litellm_params.{_PARAM_OF.get(target, target)}"
            )
            if where not in refused:
                findings.refuse(where, err["msg"])
        return None
    if len(findings.errors) > before:
        return None
    return ParsedEntry(alias, deployment, _price(deployment, costs), path)


def _mapping(
    entry: Mapping[str, Any], key: str, path: str, findings: Findings, *, required: bool
) -> Mapping[str, Any] | None:
    value = entry.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        findings.refuse(f"{path}.{key}", "must be a mapping" if value is not None else "required")
        return None
    return value


def _deployment_fields(
    path: str, params: Mapping[str, Any], environ: Mapping[str, str], findings: Findings
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    prefix = _route(path, params, fields, findings)
    route = ROUTES.get(prefix or "")
    missing = len(findings.missing_env)
    base = _resolve(f"{path}.api_base", params.get("api_base"), environ, findings)
    if len(findings.missing_env) > missing:
        # The load stops with a SetupError naming the variable; this stand-in only lets the
        # entry's other fields be checked in the same pass.
        base = UNSET_BASE
    if base is None and route is not None:
        base = route.api_base
    if base is None and route is not None:
        findings.refuse(f"{path}.api_base", f"required for {prefix}/ models: the server's URL")
    if prefix == "azure":
        _check_azure(path, params, base, findings)
    fields["api_base"] = base
    fields["api_key"] = _resolve(f"{path}.api_key", params.get("api_key"), environ, findings)
    for source, target in (("timeout", "read_timeout"), ("max_retries", "max_retries")):
        if params.get(source) is not None:
            fields[target] = params[source]
    for key in ("rpm", "tpm"):
        if params.get(key) is not None:
            fields[key] = params[key]
    for key in ("timeout", "max_retries", "rpm", "tpm"):
        if isinstance(params.get(key), bool):
            findings.refuse(f"{path}.{key}", "must be a number")
    headers = params.get("extra_headers")
    if headers is not None:
        fields["extra_headers"] = _headers(f"{path}.extra_headers", headers, environ, findings)
    return fields


def _route(
    path: str, params: Mapping[str, Any], fields: dict[str, Any], findings: Findings
) -> str | None:
    """The LiteLLM prefix of the entry (recording provider and model in ``fields``)."""
    model = params.get("model")
    if not isinstance(model, str) or not model.strip():
        findings.refuse(f"{path}.model", "required: provider/model, e.g. openai/gpt-4o")
        return None
    explicit = params.get("custom_llm_provider")
    if isinstance(explicit, str) and explicit:
        prefix, name = explicit, model.removeprefix(f"{explicit}/")
    else:
        prefix, _, name = model.partition("/")
    route = ROUTES.get(prefix)
    if route is None or not name:
        supported = ", ".join(f"{p}/" for p in ROUTES)
        findings.refuse(
            f"{path}.model",
            f"unsupported provider prefix {prefix!r}: supported are {supported} (use openai/ "
            "with api_base for any other OpenAI-compatible server)",
        )
        return None
    fields["provider"], fields["model"] = route.provider, name
    fields["key_family"] = prefix
    return prefix


def _check_azure(
    path: str, params: Mapping[str, Any], base: str | None, findings: Findings
) -> None:
    if params.get("api_version") is not None:
        findings.refuse(
            f"{path}.api_version",
            "Azure's classic deployments API (api-version) is not supported: remove "
            f"api_version and set api_base to the resource's OpenAI-compatible v1 endpoint, "
            f"https://<resource>.openai.azure.com{AZURE_V1_SUFFIX}",
        )
    if base not in (None, UNSET_BASE) and not str(base).rstrip("/").endswith(AZURE_V1_SUFFIX):
        findings.refuse(
            f"{path}.api_base",
            f"for azure/ models must be the OpenAI-compatible v1 endpoint ending in "
            f"{AZURE_V1_SUFFIX}, e.g. https://<resource>.openai.azure.com{AZURE_V1_SUFFIX}",
        )


def _resolve(path: str, value: Any, environ: Mapping[str, str], findings: Findings) -> str | None:
    """A string value, read from the environment when written ``os.environ/NAME``."""
    if value is None:
        return None
    if not isinstance(value, str):
        findings.refuse(path, "must be a string")
        return None
    if not value.startswith(ENV_PREFIX):
        return value
    variable = value.removeprefix(ENV_PREFIX)
    resolved = environ.get(variable)
    if not resolved:
        findings.missing_env.append(f"{variable} (for {path})")
        return None
    return resolved


def _headers(
    path: str, headers: Any, environ: Mapping[str, str], findings: Findings
) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        findings.refuse(path, "must be a mapping of header name to value")
        return {}
    resolved: dict[str, str] = {}
    for name, value in headers.items():
        text = _resolve(f"{path}.{name}", value, environ, findings)
        if text is not None:
            resolved[str(name)] = text
    return resolved


def _costs(
    path: str, params: Mapping[str, Any], info: Mapping[str, Any], findings: Findings
) -> dict[str, Decimal]:
    """LiteLLM's per-token costs (``litellm_params`` wins over ``model_info``), per million."""
    costs: dict[str, Decimal] = {}
    section = "model_info"
    for key in _COSTS:
        if params.get(key) is not None:
            section, value = "litellm_params", params[key]
        elif info.get(key) is not None:
            section, value = "model_info", info[key]
        else:
            continue
        per_million = _per_million(value)
        if per_million is None:
            findings.refuse(f"{path}.{section}.{key}", "must be a number >= 0 (USD per token)")
        costs[key] = per_million or Decimal(0)
    for key in _COSTS[:2]:
        if costs and key not in costs:
            findings.refuse(f"{path}.{section}.{key}", "required when another cost is given")
    return costs


def _per_million(value: Any) -> Decimal | None:
    """``value`` per token as an exact Decimal per million tokens. LiteLLM writes floats: their
    shortest repr (``str``) is the decimal the operator wrote, so it is converted, not the
    binary float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return amount.scaleb(6).normalize()


def _price(deployment: Deployment, costs: Mapping[str, Decimal]) -> DeploymentPrice | None:
    if not costs:
        return None
    input_price = costs["input_cost_per_token"]
    return DeploymentPrice(
        deployment=deployment.name,
        provider=deployment.provider,
        model=deployment.model,
        input=input_price,
        cached_input=costs.get("cache_read_input_token_cost", input_price),
        output=costs["output_cost_per_token"],
    )
