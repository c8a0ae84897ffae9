"""``load_gateway_config_file``: YAML (JSON by suffix), refusals that name the file, and no
parse error that quotes a line of the file (it may hold a key)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from deskpilot.core.errors import SetupError, ValidationFailed
from deskpilot.gateway import load_gateway_config_file

KEY = "sk-literal-" + "f1le" * 8
HAS_YAML = importlib.util.find_spec("yaml") is not None

YAML_DOCUMENT = f"""
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 500
    model_info:
      input_cost_per_token: 0.0000025
      output_cost_per_token: 1e-5   # YAML 1.1 reads this as a string: still a price
  - model_name: claude-sonnet
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_key: {KEY}}}
litellm_settings:
  drop_params: true
deskpilot:
  fallbacks: {{gpt-4o: [claude-sonnet]}}
"""


def test_a_json_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(
        json.dumps(
            {
                "model_list": [{"model_name": "m", "litellm_params": {"model": "ollama/llama3"}}],
                "general_settings": {},
            }
        )
    )

    loaded = load_gateway_config_file(path, environ={})

    assert [d.model for d in loaded.config.deployments["m"]] == ["llama3"]
    assert loaded.ignored == ("general_settings",)


@pytest.mark.skipif(not HAS_YAML, reason="PyYAML is not installed")
def test_a_yaml_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_text(YAML_DOCUMENT)

    loaded = load_gateway_config_file(path, environ={"OPENAI_API_KEY": "sk-env"})

    (gpt,) = loaded.config.deployments["gpt-4o"]
    assert (gpt.model, gpt.rpm, gpt.secret()) == ("gpt-4o", 500, "sk-env")
    assert loaded.config.fallbacks == {"gpt-4o": ("claude-sonnet",)}
    assert loaded.ignored == ("litellm_settings",)
    models = loaded.config.price_overrides()["providers"]["openai"]["models"]
    assert models["gpt-4o"] == {"input": "2.5", "cached_input": "2.5", "output": "10"}


@pytest.mark.skipif(not HAS_YAML, reason="PyYAML is not installed")
def test_invalid_yaml_is_reported_by_position_without_quoting_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_text(f"model_list:\n  - model_name: a\n    api_key: {KEY}\n   bad: [\n")

    with pytest.raises(SetupError) as raised:
        load_gateway_config_file(path, environ={})

    message = str(raised.value)
    assert "is not valid YAML" in message
    assert "line" in message
    assert KEY not in message


def test_invalid_json_is_reported_by_position(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text('{"model_list": [')

    with pytest.raises(SetupError, match=r"not valid JSON: .* line 1"):
        load_gateway_config_file(path, environ={})


def test_an_unreadable_file_stops_start_up(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(SetupError, match=r"cannot read the gateway configuration .*absent\.yaml"):
        load_gateway_config_file(missing, environ={})
    with pytest.raises(SetupError, match="cannot read"):
        load_gateway_config_file(tmp_path, environ={})


def test_a_file_that_is_not_a_mapping_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text("[]")

    with pytest.raises(SetupError, match="must be a mapping"):
        load_gateway_config_file(path, environ={})


def test_a_refusal_names_the_file_and_keeps_the_paths(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"model_list": [{"model_name": "m", "litellm_params": {}}]}))

    with pytest.raises(ValidationFailed) as raised:
        load_gateway_config_file(path, environ={})

    assert str(path) in str(raised.value)
    assert [e.path for e in raised.value.errors] == ["model_list.0.litellm_params.model"]


def _without_litellm(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``find_spec`` answers that LiteLLM is not installed; returns the names it was asked."""
    asked: list[str] = []
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        asked.append(name)
        return None if name == "litellm" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return asked


def test_litellm_deployments_without_litellm_installed_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deployments.json"
    entries = [
        {"model_name": "haiku", "litellm_params": {"model": "bedrock/anthropic.claude-3-haiku"}},
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": KEY}},
        {"model_name": "gemini", "litellm_params": {"model": "gemini/gemini-2.0-flash"}},
        {"model_name": "haiku", "litellm_params": {"model": "bedrock/anthropic.claude-3-5"}},
    ]
    path.write_text(json.dumps({"model_list": entries}))
    asked = _without_litellm(monkeypatch)

    with pytest.raises(SetupError) as raised:
        load_gateway_config_file(path, environ={})

    message = str(raised.value)
    assert "pip install 'deskpilot[litellm]'" in message
    assert "aliases gemini, haiku)" in message
    assert "gpt-4o" not in message
    assert KEY not in message
    assert asked == ["litellm"]


def test_without_litellm_deployments_litellm_is_not_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deployments.json"
    entry = {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o"}}
    path.write_text(json.dumps({"model_list": [entry]}))
    asked = _without_litellm(monkeypatch)

    loaded = load_gateway_config_file(path, environ={})

    assert [d.provider for d in loaded.config.deployments["gpt-4o"]] == ["openai"]
    assert "litellm" not in asked
