"""What importing deskpilot must not pay for: LiteLLM (seconds to import, only for deployments
served through it) and the token encodings (loaded on the first count). Checked in a fresh
interpreter, since this test session imports both. And what a LiteLLM deployment does where
LiteLLM is missing after all."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from deskpilot.gateway import Deployment, ErrorKind, LiteLLMProvider, ProviderError
from deskpilot.gateway.providers import litellm_adapter

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys

    import deskpilot.app
    import deskpilot.gateway
    from deskpilot.gateway import BUILTIN_PROVIDERS, ProviderRegistry, load_gateway_config, tokens

    app = deskpilot.app.create_app()
    registry = ProviderRegistry(BUILTIN_PROVIDERS)
    providers = [type(registry.provider(name)).__name__ for name in registry.names()]
    document = {
        "model_list": [
            {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o"}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5"}},
            {"model_name": "haiku", "litellm_params": {"model": "bedrock/anthropic.claude-3"}},
        ]
    }
    try:
        loaded = load_gateway_config(document, environ={})
        config = sorted(d.provider for ds in loaded.config.deployments.values() for d in ds)
    except Exception as exc:  # LiteLLM not installed: refused, still without importing it
        config = [type(exc).__name__]
    asyncio.run(registry.aclose())
    print(json.dumps({
        "providers": providers,
        "config": config,
        "litellm_imported": sorted(m for m in sys.modules if m.split(".")[0] == "litellm"),
        "encodings": tokens.loaded_encodings(),
    }))
    """
)


def test_importing_deskpilot_and_building_providers_imports_no_litellm_and_no_encoding() -> None:
    done = subprocess.run(  # noqa: S603  (this interpreter, a fixed script)
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["providers"] == ["OpenAICompatProvider", "AnthropicProvider", "LiteLLMProvider"]
    assert report["config"] in (["anthropic", "litellm", "openai"], ["SetupError"])
    assert report["litellm_imported"] == []
    assert report["encodings"] == []


async def test_a_litellm_deployment_without_litellm_fails_as_a_provider_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.import_module

    def import_module(name: str, package: str | None = None) -> Any:
        if name == "litellm":
            raise ModuleNotFoundError("No module named 'litellm'", name="litellm")
        return real(name, package)

    monkeypatch.setattr(litellm_adapter.importlib, "import_module", import_module)
    provider = LiteLLMProvider()
    deployment = Deployment(name="haiku", provider="litellm", model="bedrock/anthropic.claude-3")

    with pytest.raises(ProviderError) as raised:
        await provider.chat({"messages": []}, deployment=deployment)

    assert raised.value.kind is ErrorKind.SERVER_ERROR
    assert "pip install 'deskpilot[litellm]'" in raised.value.message
    assert "is not installed" in raised.value.message
    assert raised.value.__context__ is None
