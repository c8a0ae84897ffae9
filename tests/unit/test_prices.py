"""The price table: exact decimal costs, model-name normalisation, overrides, billing rules."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from deskpilot.core.errors import SetupError, ValidationFailed
from deskpilot.metering import PriceTable, UsageEvent, split_cached, to_money
from deskpilot.metering.prices import billed, markup_of

EXPECTED_MODELS = {
    "openai": [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o3",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ],
    "anthropic": [
        "claude-3-5-haiku",
        "claude-3-7-sonnet",
        "claude-sonnet-4",
        "claude-opus-4",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    ],
    "google": ["gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro"],
    "mistral": ["mistral-large", "mistral-small"],
}


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


def chat(**fields: object) -> UsageEvent:
    base: dict[str, object] = {"component": "gateway", "operation": "chat", "request_id": "r1"}
    return UsageEvent.model_validate(base | fields)


def test_the_table_ships_inside_the_package() -> None:
    assert resources.files("deskpilot.metering").joinpath("prices.json").is_file()


@pytest.mark.parametrize(
    ("provider", "model"), [(p, m) for p, models in EXPECTED_MODELS.items() for m in models]
)
def test_every_major_model_has_a_price(table: PriceTable, provider: str, model: str) -> None:
    price = table.lookup(provider, model)
    assert price is not None
    assert price.input > 0
    assert price.cached_input <= price.input


def test_million_tokens_cost_is_exact(table: PriceTable) -> None:
    charge = table.charge(
        chat(provider="openai", provider_model="gpt-4o", input_tokens=1_234_567),
        markup_percent=Decimal(20),
    )
    assert charge.provider_cost == Decimal("3.0864175")
    assert charge.billed_amount == Decimal("3.703701")
    assert not charge.unpriced


def test_input_cached_and_output_tokens_use_their_own_prices(table: PriceTable) -> None:
    charge = table.charge(
        chat(
            provider="anthropic",
            provider_model="claude-sonnet-4",
            input_tokens=1000,
            cached_tokens=10_000,
            output_tokens=500,
        ),
        markup_percent=Decimal(0),
    )
    # 1000 * 3.00 + 10000 * 0.30 + 500 * 15.00, per million
    assert charge.provider_cost == Decimal("0.0135")
    assert charge.billed_amount == charge.provider_cost


def test_split_cached_takes_cached_tokens_out_of_the_prompt_count() -> None:
    assert split_cached(1200, 1000) == (200, 1000)
    assert split_cached(100, 500) == (0, 100)


@pytest.mark.parametrize(
    ("provider", "model", "canonical"),
    [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "GPT-4.1-2025-04-14", "gpt-4.1"),
        ("openai", "o3-2025-04-16", "o3"),
        ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("anthropic", "claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-0", "claude-sonnet-4"),
        ("anthropic", "claude-opus-4@20250514", "claude-opus-4"),
        ("google", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("mistral", "mistral-large-latest", "mistral-large"),
        ("mistral", "mistral-small-2503", "mistral-small"),
    ],
)
def test_dated_and_aliased_names_resolve(
    table: PriceTable, provider: str, model: str, canonical: str
) -> None:
    canonical_provider = "google" if provider == "gemini" else provider
    assert table.lookup(provider, model) == table.lookup(canonical_provider, canonical)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "o3-mini"),  # a different model, not a version of o3
        ("openai", "gpt-4o-audio-preview"),
        ("google", "gemini-2.5-flash-lite"),
        ("openai", "gpt-5-turbo"),
        ("nowhere", "gpt-4o"),
        ("openai", ""),
    ],
)
def test_unknown_models_are_not_guessed(table: PriceTable, provider: str, model: str) -> None:
    assert table.lookup(provider, model) is None
    charge = table.charge(
        chat(provider=provider, provider_model=model, input_tokens=10**6),
        markup_percent=Decimal(20),
    )
    assert charge.provider_cost == 0
    assert charge.billed_amount == 0
    assert charge.unpriced


def test_the_alias_is_never_priced_in_place_of_the_provider_model(table: PriceTable) -> None:
    charge = table.charge(
        chat(provider="openai", model_alias="gpt-4o", input_tokens=10**6),
        markup_percent=Decimal(0),
    )
    assert charge.unpriced


def test_local_models_cost_nothing_and_are_priced(table: PriceTable) -> None:
    for provider in ("local", "ollama", "vllm"):
        charge = table.charge(
            chat(provider=provider, provider_model="llama3.1:8b", input_tokens=10**6),
            markup_percent=Decimal(20),
        )
        assert charge.provider_cost == 0
        assert not charge.unpriced


def test_local_embeddings_use_their_own_price() -> None:
    table = PriceTable.load({"local_embedding_per_million_tokens": "0.01"})
    embed = chat(
        operation="embed", provider="local", provider_model="bge-small", input_tokens=10**6
    )
    assert table.charge(embed, markup_percent=Decimal(0)).provider_cost == Decimal("0.01")
    generate = chat(provider="local", provider_model="bge-small", input_tokens=10**6)
    assert table.charge(generate, markup_percent=Decimal(0)).provider_cost == 0


def test_events_without_a_model_cost_nothing_and_are_not_flagged(table: PriceTable) -> None:
    charge = table.charge(
        chat(component="rag", operation="retrieve", documents=3), markup_percent=Decimal(50)
    )
    assert charge.provider_cost == 0
    assert not charge.unpriced


def test_a_cache_hit_costs_and_bills_nothing(table: PriceTable) -> None:
    hit = chat(
        provider="openai",
        provider_model="gpt-4o",
        input_tokens=1000,
        provider_cost=Decimal("1"),
        cache_hit=True,
    )
    charge = table.charge(hit, markup_percent=Decimal(20))
    assert (charge.provider_cost, charge.billed_amount, charge.unpriced) == (0, 0, False)


def test_a_provider_reported_cost_wins_over_the_table(table: PriceTable) -> None:
    reported = chat(
        provider="openai",
        provider_model="unknown-model",
        input_tokens=10**6,
        provider_cost=Decimal("0.42"),
    )
    charge = table.charge(reported, markup_percent=Decimal(10))
    assert charge.provider_cost == Decimal("0.42")
    assert charge.billed_amount == Decimal("0.462")
    assert not charge.unpriced


def test_overrides_merge_over_the_bundled_table() -> None:
    table = PriceTable.load(
        {
            "storage_gb_month": "0.25",
            "providers": {
                "openai": {
                    "models": {
                        "gpt-4o": {"input": "2.00"},
                        "gpt-4o-mini": None,
                        "ft:gpt-4o:acme": {
                            "input": "3.75",
                            "cached_input": "1.875",
                            "output": "15",
                        },
                    }
                },
                "acme": {
                    "models": {"house-llm": {"input": "1", "cached_input": "1", "output": "2"}}
                },
            },
        }
    )
    gpt4o = table.lookup("openai", "gpt-4o")
    assert gpt4o is not None
    assert (gpt4o.input, gpt4o.output) == (Decimal("2.00"), Decimal("10.00"))
    assert table.lookup("openai", "gpt-4o-mini") is None
    assert table.lookup("openai", "ft:gpt-4o:acme") is not None
    assert table.lookup("acme", "house-llm") is not None
    assert table.storage_gb_month == Decimal("0.25")
    assert PriceTable.load().lookup("openai", "gpt-4o-mini") is not None  # bundled untouched


@pytest.mark.parametrize(
    "overrides",
    [
        {"storage_gb_month": 0.1},  # a float: not exact
        {"providers": {"openai": {"models": {"gpt-4o": {"input": "-1"}}}}},
        {"providers": {"x": {"models": {"m": {"input": "1"}}}}},  # incomplete
        {"currency": "EUR"},
        {"unknown_key": "1"},
    ],
)
def test_bad_overrides_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        PriceTable.load(overrides)


def test_markup_and_discount() -> None:
    assert markup_of({"markup_percent": "20"}) == Decimal(20)
    assert markup_of({}) == 0
    assert billed(Decimal("10"), Decimal("-25")) == Decimal("7.5")
    assert billed(Decimal("10"), Decimal("-100")) == 0


def test_money_is_rounded_half_even_to_twelve_places_only_when_stored() -> None:
    assert to_money(Decimal("0.0000000000005")) == Decimal("0.000000000000")
    assert to_money(Decimal("0.0000000000015")) == Decimal("0.000000000002")
    assert to_money(Decimal("3.0864175")) == Decimal("3.086417500000")
    tiny = PriceTable.load().charge(
        chat(provider="openai", provider_model="gpt-4.1-nano", cached_tokens=1),
        markup_percent=Decimal(0),
    )
    assert tiny.provider_cost == Decimal("0.000000025")  # unrounded until stored


def test_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"providers": {"openai": {"models": {"gpt-4o": {"input": "1.00"}}}}}')
    price = PriceTable.load_file(path).lookup("openai", "gpt-4o")
    assert price is not None
    assert price.input == Decimal("1.00")
    assert PriceTable.load_file(None).lookup("openai", "gpt-4o") == table_default()
    path.write_text('{"storage_gb_month": 0.5}')
    with pytest.raises(SetupError, match="storage_gb_month"):
        PriceTable.load_file(path)
    path.write_text("[1]")
    with pytest.raises(SetupError, match="JSON object"):
        PriceTable.load_file(path)
    with pytest.raises(SetupError, match="cannot read"):
        PriceTable.load_file(tmp_path / "missing.json")


def table_default() -> object:
    return PriceTable.load().lookup("openai", "gpt-4o")
