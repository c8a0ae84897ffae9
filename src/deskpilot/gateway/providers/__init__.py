"""LLM providers: the ``LLMProvider`` protocol, its registry, and the built-in providers."""

from deskpilot.gateway.providers.anthropic import AnthropicProvider
from deskpilot.gateway.providers.base import LLMProvider, ProviderFactory, ProviderRegistry
from deskpilot.gateway.providers.http import PoolLimits
from deskpilot.gateway.providers.openai_compat import OpenAICompatProvider

BUILTIN_PROVIDERS: tuple[tuple[str, ProviderFactory], ...] = (
    ("openai", OpenAICompatProvider),
    ("anthropic", AnthropicProvider),
)

__all__ = [
    "BUILTIN_PROVIDERS",
    "AnthropicProvider",
    "LLMProvider",
    "OpenAICompatProvider",
    "PoolLimits",
    "ProviderFactory",
    "ProviderRegistry",
]
