"""The price table: what a provider charges per million tokens, bundled with the package.

Prices live in ``prices.json`` next to this module (no network fetch), as decimal strings in
USD per million tokens. A deployment merges its own overrides over the bundled table
(``PriceTable.load(overrides)``; same shape, JSON merge patch semantics, ``null`` removes an
entry), e.g. to add a negotiated rate or a fine-tuned model.

Token convention of deskpilot usage events: ``input_tokens`` EXCLUDES cached input tokens.
Providers that report cached tokens inside the prompt count (OpenAI's ``prompt_tokens``) must
be split with ``split_cached`` by the caller, so that every token is billed exactly once:
``input_tokens`` at the input price, ``cached_tokens`` at the cached-input price.

All arithmetic is ``decimal.Decimal`` with a wide context; amounts are rounded (12 places,
half-even) only where they are stored (``to_money``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from deskpilot.core.config import merge_patch
from deskpilot.core.errors import FieldError, SetupError, ValidationFailed
from deskpilot.metering.schemas import UsageEvent

MILLION = Decimal(1_000_000)
MONEY_QUANTUM = Decimal("1e-12")
ZERO = Decimal(0)
WILDCARD = "*"
LOCAL = "local"
_PRECISION = 60  # digits; token counts times prices never come close
_CACHE_LIMIT = 4096

# What may follow a known model name and still be that model: dates, numeric versions,
# "-latest", Vertex "@version", Bedrock "-v1:0". Anything else ("-mini", "-lite", "-preview")
# is a different model with a different price, so it stays unknown rather than guessed.
_VERSION_SUFFIX = re.compile(
    r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{3,4}|-latest|@[0-9a-z._-]+|-v\d+(?::\d+)?)+"
)


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('write prices as decimal strings (e.g. "2.50"), not floats')
    return value


Price = Annotated[Decimal, BeforeValidator(_refuse_float), Field(ge=0)]


class ModelPrice(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: Price
    cached_input: Price
    output: Price


class ProviderPrices(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, ModelPrice] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)


class PriceDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    about: str = ""
    as_of: str = ""
    currency: str = Field(default="USD", pattern="^USD$")
    storage_gb_month: Price
    local_embedding_per_million_tokens: Price
    provider_aliases: dict[str, str] = Field(default_factory=dict)
    providers: dict[str, ProviderPrices] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Charge:
    """What one event cost (provider) and what the tenant is billed, unrounded. ``unpriced``:
    the model is not in the table, so the cost is 0 and the Meter warns."""

    provider_cost: Decimal
    billed_amount: Decimal
    unpriced: bool = False


def to_money(amount: Decimal) -> Decimal:
    """The stored form: 12 decimal places, half-even (the ledger's ``Numeric(24, 12)``)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def split_cached(prompt_tokens: int, cached_tokens: int) -> tuple[int, int]:
    """``(input_tokens, cached_tokens)`` from a provider that counts cached tokens inside the
    prompt count: the deskpilot convention is that input excludes cached."""
    cached = min(cached_tokens, prompt_tokens)
    return prompt_tokens - cached, cached


def token_cost(price: ModelPrice, *, input_tokens: int, cached_tokens: int, output: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total = (
            input_tokens * price.input + cached_tokens * price.cached_input + output * price.output
        )
        return total / MILLION


def billed(provider_cost: Decimal, markup_percent: Decimal) -> Decimal:
    """Provider cost with the tenant's markup (negative: discount), exact."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return provider_cost * (1 + markup_percent / 100)


def markup_of(billing_section: Mapping[str, Any]) -> Decimal:
    """``billing.markup_percent`` of a tenant's effective config (stored as a JSON string)."""
    return Decimal(str(billing_section.get("markup_percent", 0)))


class PriceTable:
    """Prices keyed by provider and model, with alias and dated-name normalisation."""

    def __init__(self, document: PriceDocument) -> None:
        self.document = document
        self.storage_gb_month = document.storage_gb_month
        self.local_embedding = document.local_embedding_per_million_tokens
        self._providers = {p.lower(): v for p, v in document.providers.items()}
        self._provider_aliases = {
            k.lower(): v.lower() for k, v in document.provider_aliases.items()
        }
        self._resolved: dict[tuple[str, str, bool], ModelPrice | None] = {}

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None) -> PriceTable:
        """The bundled table, with ``overrides`` merged over it (JSON merge patch)."""
        bundled = json.loads(
            resources.files("deskpilot.metering").joinpath("prices.json").read_text("utf-8")
        )
        document = merge_patch(bundled, overrides or {})
        try:
            return cls(PriceDocument.model_validate(document))
        except ValidationError as exc:
            errors = tuple(
                FieldError(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()
            )
            raise ValidationFailed("price table refused", errors) from exc

    @classmethod
    def load_file(
        cls, path: Path | None, *, deployments: Mapping[str, Any] | None = None
    ) -> PriceTable:
        """The bundled table with the JSON overrides in ``path`` (``DESKPILOT_PRICES_FILE``)
        merged over it, then the prices of the gateway's deployments file (``deployments``,
        the more specific of the two); a file that cannot be used stops start-up, saying why."""
        if path is None:
            return cls.load(deployments)
        try:
            overrides = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read the price overrides in {path}: {exc}") from exc
        if not isinstance(overrides, dict):
            raise SetupError(f"the price overrides in {path} must be a JSON object")
        try:
            return cls.load(merge_patch(overrides, deployments or {}))
        except ValidationFailed as exc:
            reasons = "; ".join(f"{e.path}: {e.message}" for e in exc.errors)
            raise SetupError(f"the price overrides in {path} were refused: {reasons}") from exc

    def lookup(self, provider: str, model: str, *, embedding: bool = False) -> ModelPrice | None:
        """The price of ``model`` at ``provider``, or None when unknown (never guessed)."""
        key = (provider, model, embedding)
        if key not in self._resolved:
            if len(self._resolved) >= _CACHE_LIMIT:
                self._resolved.clear()
            self._resolved[key] = self._resolve(provider, model, embedding)
        return self._resolved[key]

    def _resolve(self, provider: str, model: str, embedding: bool) -> ModelPrice | None:
        name = provider.strip().lower()
        name = self._provider_aliases.get(name, name)
        prices = self._providers.get(name)
        if prices is None:
            return None
        if name == LOCAL and embedding:
            return ModelPrice(
                input=self.local_embedding, cached_input=self.local_embedding, output=ZERO
            )
        wanted = model.strip().lower().removeprefix("models/")
        wanted = prices.aliases.get(wanted, wanted)
        if wanted in prices.models:
            return prices.models[wanted]
        known = [
            m
            for m in prices.models
            if m != WILDCARD
            and wanted.startswith(m)
            and _VERSION_SUFFIX.fullmatch(wanted[len(m) :])
        ]
        if known:
            return prices.models[max(known, key=len)]
        return prices.models.get(WILDCARD)

    def estimate(
        self,
        provider: str,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        markup_percent: Decimal,
        embedding: bool = False,
    ) -> Decimal:
        """The billed amount ``input_tokens`` in and ``output_tokens`` out would cost, for a
        quota reservation before the call; 0 when the model is unpriced."""
        price = self.lookup(provider, model, embedding=embedding)
        if price is None:
            return ZERO
        cost = token_cost(price, input_tokens=input_tokens, cached_tokens=0, output=output_tokens)
        return billed(cost, markup_percent)

    def charge(self, event: UsageEvent, *, markup_percent: Decimal) -> Charge:
        """Cost and billed amount of one event.

        A cache hit made no provider call: cost 0 and billed 0 (serving from cache is what the
        tenant's cache quota pays for). A provider-reported cost wins over the table. An event
        with neither provider nor model (retrieval, ingestion bookkeeping) costs 0 and is not
        "unpriced"; a named but unknown model costs 0 and is flagged.
        """
        if event.cache_hit:
            return Charge(ZERO, ZERO)
        if event.provider_cost is not None:
            cost, unpriced = event.provider_cost, False
        elif not event.provider and not event.provider_model:
            cost, unpriced = ZERO, False
        else:
            # The provider's model name, never the deployment's alias: an alias may route to
            # any model, so pricing by it would be a guess.
            price = self.lookup(
                event.provider,
                event.provider_model,
                embedding=event.operation.startswith("embed"),
            )
            unpriced = price is None
            cost = ZERO
            if price is not None:
                cost = token_cost(
                    price,
                    input_tokens=event.input_tokens,
                    cached_tokens=event.cached_tokens,
                    output=event.output_tokens,
                )
        return Charge(cost, billed(cost, markup_percent), unpriced)
