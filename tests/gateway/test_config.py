"""The deployments file in LiteLLM's ``model_list`` shape, read into a ``GatewayConfig``."""

from __future__ import annotations

import traceback
from decimal import Decimal
from typing import Any

import pytest

from deskpilot.core.errors import SetupError, ValidationFailed
from deskpilot.gateway import GatewayConfig, LoadedConfig, load_gateway_config
from deskpilot.metering import PriceTable

OPENAI_KEY = "sk-env-" + "0penai" * 6
LITERAL_KEY = "sk-literal-" + "s3cret" * 6  # distinctive, so a leak is easy to spot
ENV = {
    "OPENAI_API_KEY": OPENAI_KEY,
    "AZURE_KEY": "azure-" + "k" * 20,
    "VLLM_BASE": "http://gpu:8000/v1",
}


def litellm_document() -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": "gpt-4o",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_key": "os.environ/OPENAI_API_KEY",
                    "rpm": 500,
                    "tpm": 200000,
                    "timeout": 30,
                },
                "model_info": {
                    "input_cost_per_token": 0.0000025,
                    "output_cost_per_token": 0.00001,
                    "cache_read_input_token_cost": 1.25e-06,
                },
            },
            {
                "model_name": "gpt-4o",
                "litellm_params": {
                    "model": "azure/gpt-4o-eu",
                    "api_base": "https://x.openai.azure.com/openai/v1/",
                    "api_key": "os.environ/AZURE_KEY",
                },
            },
            {
                "model_name": "claude-sonnet",
                "litellm_params": {
                    "model": "anthropic/claude-sonnet-4-5",
                    "api_key": LITERAL_KEY,
                    "extra_headers": {"anthropic-beta": "prompt-caching-2024-07-31"},
                },
                "model_info": {"id": "claude-main", "mode": "chat"},
            },
            {"model_name": "local-llama", "litellm_params": {"model": "ollama/llama3"}},
            {
                "model_name": "local-qwen",
                "litellm_params": {
                    "model": "hosted_vllm/Qwen/Qwen2.5-7B",
                    "api_base": "os.environ/VLLM_BASE",
                },
            },
            {
                "model_name": "local-qwen",
                "litellm_params": {
                    "model": "openai/qwen2.5",
                    "api_base": "http://lmstudio:1234/v1",
                },
            },
        ],
        "router_settings": {
            "num_retries": 2,
            "timeout": 45,
            "routing_strategy": "simple-shuffle",
            "fallbacks": [{"gpt-4o": ["claude-sonnet"]}, {"claude-sonnet": ["local-llama"]}],
        },
        "litellm_settings": {"drop_params": True},
        "general_settings": {"master_key": "sk-master"},
        "deskpilot": {
            "fallbacks": {"gpt-4o": ["claude-sonnet", "local-llama"]},
            "default_alias": "gpt-4o",
        },
    }


def load(document: dict[str, Any], environ: dict[str, str] | None = None) -> LoadedConfig:
    return load_gateway_config(document, environ=ENV if environ is None else environ)


def refusal(document: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as raised:
        load(document, environ)
    return {e.path: e.message for e in raised.value.errors}


def entry(model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": "m", "litellm_params": {"model": model, **params}}


def test_a_litellm_config_becomes_deployments_by_alias() -> None:
    config = load(litellm_document()).config

    assert list(config.deployments) == ["gpt-4o", "claude-sonnet", "local-llama", "local-qwen"]
    openai, azure = config.deployments["gpt-4o"]
    assert (openai.name, openai.provider, openai.model) == ("gpt-4o#0", "openai", "gpt-4o")
    assert openai.api_base == "https://api.openai.com/v1"
    assert openai.secret() == OPENAI_KEY
    assert (openai.rpm, openai.tpm, openai.read_timeout) == (500, 200000, 30.0)
    assert (azure.name, azure.provider, azure.model) == ("gpt-4o#1", "openai", "gpt-4o-eu")
    assert azure.api_base == "https://x.openai.azure.com/openai/v1"
    assert azure.read_timeout == 45.0  # router_settings.timeout when the entry gives none
    (claude,) = config.deployments["claude-sonnet"]
    assert (claude.name, claude.provider, claude.model) == (
        "claude-main",
        "anthropic",
        "claude-sonnet-4-5",
    )
    assert claude.api_base == "https://api.anthropic.com"
    assert claude.secret() == LITERAL_KEY
    assert dict(claude.extra_headers) == {"anthropic-beta": "prompt-caching-2024-07-31"}
    (llama,) = config.deployments["local-llama"]
    assert (llama.provider, llama.model, llama.api_key) == ("openai", "llama3", None)
    assert llama.api_base == "http://localhost:11434/v1"
    vllm, compatible = config.deployments["local-qwen"]
    assert (vllm.model, vllm.api_base) == ("Qwen/Qwen2.5-7B", "http://gpu:8000/v1")
    assert (compatible.model, compatible.api_base) == ("qwen2.5", "http://lmstudio:1234/v1")
    assert config.retries == 2
    assert config.default_alias == "gpt-4o"


def test_fallbacks_come_from_both_sections_ours_winning_per_alias() -> None:
    config = load(litellm_document()).config

    assert dict(config.fallbacks) == {
        "gpt-4o": ("claude-sonnet", "local-llama"),
        "claude-sonnet": ("local-llama",),
    }


def test_unused_settings_are_reported_not_refused() -> None:
    loaded = load(litellm_document())

    assert loaded.ignored == (
        "litellm_settings",
        "general_settings",
        "router_settings.routing_strategy",
        "model_list.2.model_info.mode",
    )
    assert "sk-master" not in repr(loaded)


def test_a_missing_environment_variable_names_the_variable_and_the_entry() -> None:
    with pytest.raises(SetupError) as raised:
        load(litellm_document(), environ={"OPENAI_API_KEY": OPENAI_KEY, "AZURE_KEY": ""})

    message = str(raised.value)
    assert "AZURE_KEY (for model_list.1.litellm_params.api_key)" in message
    assert "VLLM_BASE (for model_list.4.litellm_params.api_base)" in message
    assert OPENAI_KEY not in message


def test_no_key_appears_in_repr_str_or_refusals() -> None:
    config = load(litellm_document()).config
    for text in (repr(config), str(config), repr(config.deployments["claude-sonnet"])):
        assert LITERAL_KEY not in text
        assert OPENAI_KEY not in text

    document = litellm_document()
    document["model_list"][2]["litellm_params"]["extra_headers"] = {"Authorization": LITERAL_KEY}
    document["model_list"][2]["litellm_params"]["rpm"] = "many"
    with pytest.raises(ValidationFailed) as raised:
        load(document)
    rendered = "".join(traceback.format_exception(raised.value)) + repr(raised.value.errors)
    assert "model_list.2.litellm_params.extra_headers" in rendered
    assert "model_list.2.litellm_params.rpm" in rendered
    assert LITERAL_KEY not in rendered


def test_other_prefixes_are_served_through_litellm_by_their_full_model_string() -> None:
    document = litellm_document()
    document["model_list"][3]["litellm_params"]["model"] = "bedrock/anthropic.claude-v2"
    document["model_list"].append(
        entry(
            "gemini-2.0-flash",
            custom_llm_provider="vertex_ai",
            api_base="https://europe-west4-aiplatform.googleapis.com/",
            api_key="os.environ/OPENAI_API_KEY",
        )
    )

    config = load(document).config

    (bedrock,) = config.deployments["local-llama"]
    assert (bedrock.provider, bedrock.model) == ("litellm", "bedrock/anthropic.claude-v2")
    assert (bedrock.api_base, bedrock.api_key) == (None, None)
    assert bedrock.read_timeout == 45.0
    (vertex,) = config.deployments["m"]
    assert (vertex.provider, vertex.model) == ("litellm", "vertex_ai/gemini-2.0-flash")
    assert vertex.api_base == "https://europe-west4-aiplatform.googleapis.com"
    assert vertex.secret() == OPENAI_KEY
    assert bedrock.identity() != vertex.identity()


def test_custom_llm_provider_does_not_double_a_prefix_the_model_already_has() -> None:
    document = {"model_list": [entry("mistral/mistral-large", custom_llm_provider="mistral")]}

    (deployment,) = load(document).config.deployments["m"]

    assert (deployment.provider, deployment.model) == ("litellm", "mistral/mistral-large")


def test_a_model_that_is_not_provider_slash_model_is_refused() -> None:
    for model in ("gpt-4o", "bedrock/", "/gpt-4o", "Bedrock/x", "my provider/x", "bedrock/ "):
        message = refusal({"model_list": [entry(model)]})["model_list.0.litellm_params.model"]
        assert "provider/model" in message, model


def test_custom_llm_provider_stands_for_the_prefix() -> None:
    document = {"model_list": [entry("gpt-4o", custom_llm_provider="openai")]}

    (deployment,) = load(document).config.deployments["m"]

    assert (deployment.provider, deployment.model) == ("openai", "gpt-4o")


def test_classic_azure_is_refused_with_the_v1_endpoint_to_use() -> None:
    classic = entry(
        "azure/gpt-4o-eu", api_base="https://x.openai.azure.com", api_version="2024-06-01"
    )

    errors = refusal({"model_list": [classic]})

    assert "classic" in errors["model_list.0.litellm_params.api_version"]
    assert "/openai/v1" in errors["model_list.0.litellm_params.api_base"]


def test_endpoints_without_a_default_require_api_base() -> None:
    errors = refusal({"model_list": [entry("azure/gpt-4o"), entry("hosted_vllm/llama")]})

    assert set(errors) == {
        "model_list.0.litellm_params.api_base",
        "model_list.1.litellm_params.api_base",
    }


def test_prices_become_exact_per_million_decimal_strings_for_the_price_table() -> None:
    config = load(litellm_document()).config

    overrides = config.price_overrides()

    assert overrides["providers"]["openai"]["models"] == {
        "gpt-4o": {"input": "2.5", "cached_input": "1.25", "output": "10"}
    }
    price = PriceTable.load(overrides).lookup("openai", "gpt-4o")
    assert price is not None
    assert (price.input, price.cached_input, price.output) == (
        Decimal("2.5"),
        Decimal("1.25"),
        Decimal("10"),
    )


def test_prices_override_a_bundled_model_alias_and_default_cache_reads_to_input() -> None:
    priced = entry(
        "anthropic/Claude-Sonnet-4-0",
        input_cost_per_token="0.000000123456789",
        output_cost_per_token=3e-7,
    )

    config = load({"model_list": [priced]}, environ={}).config
    price = PriceTable.load(config.price_overrides()).lookup("anthropic", "claude-sonnet-4-0")

    assert price is not None
    assert price.input == price.cached_input == Decimal("0.123456789")
    assert price.output == Decimal("0.3")


def test_bad_prices_are_refused() -> None:
    negative = entry("openai/a", input_cost_per_token=-1, output_cost_per_token=0)
    half = {**entry("openai/b"), "model_info": {"input_cost_per_token": 1e-6}}
    text = entry("openai/c", input_cost_per_token="cheap", output_cost_per_token=True)
    a, b = entry("openai/d"), entry("openai/d")
    a["litellm_params"].update(input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    b["litellm_params"].update(input_cost_per_token=1e-6, output_cost_per_token=3e-6)

    errors = refusal({"model_list": [negative, half, text, a, b]})

    assert set(errors) == {
        "model_list.0.litellm_params.input_cost_per_token",
        "model_list.1.model_info.output_cost_per_token",
        "model_list.2.litellm_params.input_cost_per_token",
        "model_list.2.litellm_params.output_cost_per_token",
        "model_list.4.model_info",
    }
    assert "model_list.3" in errors["model_list.4.model_info"]


def test_unknown_fallback_aliases_are_refused_by_path() -> None:
    document = litellm_document()
    document["router_settings"]["fallbacks"] = [{"gpt-5": ["gpt-4o"]}, {"gpt-4o": ["nope"]}]
    document["deskpilot"] = {
        "fallbacks": {"claude-sonnet": ["local-llama", "ghost"]},
        "default_alias": "x",
    }

    errors = refusal(document)

    assert set(errors) == {
        "router_settings.fallbacks.0.gpt-5",
        "router_settings.fallbacks.1.gpt-4o.0",
        "deskpilot.fallbacks.claude-sonnet.1",
        "deskpilot.default_alias",
    }


def test_fallback_cycles_are_refused() -> None:
    document = litellm_document()
    document["router_settings"]["fallbacks"] = [
        {"local-llama": ["gpt-4o"]},
        {"local-qwen": ["local-qwen"]},
    ]

    errors = refusal(document)

    # Named where the walk closed it: deskpilot.fallbacks sends gpt-4o on to local-llama.
    assert errors["deskpilot.fallbacks.gpt-4o"] == (
        "fallback cycle: local-llama -> gpt-4o -> local-llama"
    )
    assert (
        errors["router_settings.fallbacks.1.local-qwen"]
        == "fallback cycle: local-qwen -> local-qwen"
    )
    assert len(errors) == 2


def test_every_error_is_collected_with_its_path() -> None:
    document: dict[str, Any] = {
        "model_list": [
            {
                "model_name": "a",
                "litellm_params": {"model": "openai/a", "api_base": "ftp://x", "tpm": 0},
            },
            {"litellm_params": {"model": "openai/b"}},
            {"model_name": "c"},
            "not-an-entry",
            {
                "model_name": "e",
                "litellm_params": {"model": "openai/e"},
            },
            {"model_name": "f", "litellm_params": {"model": "openai/f", "timeout": -1}},
        ],
        "router_settings": {"num_retries": 99},
        "deskpilot": {"default_alias": "a", "fallbcks": {}},
    }

    errors = refusal(document)

    assert set(errors) == {
        "model_list.0.litellm_params.api_base",
        "model_list.0.litellm_params.tpm",
        "model_list.1.model_name",
        "model_list.2.litellm_params",
        "model_list.3",
        "model_list.5.litellm_params.timeout",
        "router_settings.num_retries",
        "deskpilot.fallbcks",
    }


def test_duplicate_deployment_ids_are_refused() -> None:
    first, second = entry("openai/a"), entry("openai/b")
    first["model_info"] = second["model_info"] = {"id": "primary"}

    errors = refusal({"model_list": [first, second]})

    assert errors == {
        "model_list.1.model_info.id": "deployment name 'primary' is already used by model_list.0"
    }


def test_an_empty_or_missing_model_list_is_refused() -> None:
    assert set(refusal({})) == {"model_list"}
    assert set(refusal({"model_list": []})) == {"model_list"}


def test_the_config_is_frozen() -> None:
    config = load(litellm_document()).config

    assert isinstance(config, GatewayConfig)
    with pytest.raises(AttributeError):
        config.retries = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.deployments["x"] = ()  # type: ignore[index]


def test_refusals_in_the_document_come_before_missing_variables() -> None:
    document = {"model_list": [entry("azure/d", api_base="os.environ/AZURE_BASE", rpm=0)]}

    errors = refusal(document, environ={})

    # The entry is still checked in full while its api_base variable is unset.
    assert set(errors) == {"model_list.0.litellm_params.rpm"}


def test_an_entry_refused_for_one_field_is_still_checked_in_full() -> None:
    classic = entry("azure/d", api_base="https://x.openai.azure.com/openai/v1", api_version="1")
    classic["litellm_params"].update(rpm=0, timeout=True)
    no_base = entry("hosted_vllm/llama", tpm=-5)

    errors = refusal({"model_list": [classic, no_base]})

    assert set(errors) == {
        "model_list.0.litellm_params.api_version",
        "model_list.0.litellm_params.rpm",
        "model_list.0.litellm_params.timeout",
        "model_list.1.litellm_params.api_base",
        "model_list.1.litellm_params.tpm",
    }
    assert errors["model_list.1.litellm_params.api_base"].startswith("required for hosted_vllm/")
