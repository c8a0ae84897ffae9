"""LLM providers: the ``LLMProvider`` protocol, its registry, and the built-in providers."""

from deskpilot.gateway.providers.anthropic import AnthropicProvider
from deskpilot.gateway.providers.base import LLMProvider, ProviderFactory, ProviderRegistry
from deskpilot.gateway.providers.http import PoolLimits
from deskpilot.gateway.providers.litellm_adapter import LiteLLMProvider
from deskpilot.gateway.providers.openai_compat import OpenAICompatProvider

BUILTIN_PROVIDERS: tuple[tuple[str, ProviderFactory], ...] = (
    ("openai", OpenAICompatProvider),
    ("anthropic", AnthropicProvider),
    ("litellm", LiteLLMProvider),  # imports LiteLLM on its first call only
)

__all__ = [
    "BUILTIN_PROVIDERS",
    "AnthropicProvider",
    "LLMProvider",
    "LiteLLMProvider",
    "OpenAICompatProvider",
    "PoolLimits",
    "ProviderFactory",
    "ProviderRegistry",
]
